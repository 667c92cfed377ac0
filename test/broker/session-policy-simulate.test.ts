import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runSimulation, type EvaluationResult } from '@cloud-copilot/iam-simulate';
import { describe, expect, it } from 'vitest';
import { buildSessionPolicy } from '../../src/broker/session-policy.js';
import { GuardError } from '../../src/errors.js';
import { parseInvocation } from '../../src/invocation/parse.js';
import type { ParsedInvocation, Permission } from '../../src/invocation/types.js';
import { decide } from '../../src/policy/decide.js';
import { sessionPolicyEnforces } from '../../src/policy/enforceable.js';
import { loadPolicies } from '../../src/policy/load.js';
import type { Caller } from '../../src/policy/types.js';

// An independent check of the session policies the broker issues (issue 7, "Must show"): an IAM policy evaluator
// that is not ours (@cloud-copilot/iam-simulate, a devDependency used by this test only) evaluates each policy
// against the request the decided call makes — it must be allowed — and against the variants the decision
// denied — they must be denied. No AWS account can run here, so a policy simulator stands in for IAM; the
// policies are built as the broker builds them (src/broker/routes/grants.ts: the parsed invocation's permissions,
// the target account, the invocation itself) from real parsed invocations, decided by policies/default.yaml.
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const ACCOUNT = '111122223333';
const OTHER = '999988887777';
const policySet = loadPolicies([resolve(repoRoot, 'policies/default.yaml')]);
const caller: Caller = { subject: 'alice', groups: ['developers'] };
const target = { name: 'dev', account: ACCOUNT, region: 'us-east-1' };
// The session's principal: an assumed-role session of the target's role (STS AssumeRole).
const PRINCIPAL = `arn:aws:sts::${ACCOUNT}:assumed-role/guard-dev/grt_simulated`;

function parse(argv: string[]): ParsedInvocation {
  return parseInvocation(argv, { account: ACCOUNT, region: 'us-east-1', cwd: '/w', env: { HOME: '/h' }, readFile: () => Buffer.from('{}') });
}

/** The session policy the broker would issue, after checking the default policy does not deny the call. */
function issue(argv: string[]): { inv: ParsedInvocation; policy: unknown } {
  const inv = parse(argv);
  expect(decide(policySet, { invocation: inv, caller, target }).decision, argv.join(' ')).not.toBe('deny');
  return { inv, policy: JSON.parse(buildSessionPolicy(inv.permissions, { resourceAccounts: [ACCOUNT], invocation: inv })) };
}

interface Request {
  action: string;
  resource: string;
  /** Account owning the resource (the simulator's resource.accountId; also aws:ResourceAccount). */
  account?: string;
  context?: Record<string, string | string[]>;
}

const DEFAULT_KEY_POLICY = (account: string) => ({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: 'kms:*', Resource: '*' }],
});

/** IAM's answer for one request signed with the session: identity policy allows all, the session policy limits. */
async function evaluate(policy: unknown, req: Request): Promise<EvaluationResult> {
  const account = req.account ?? ACCOUNT;
  const result = await runSimulation(
    {
      request: {
        principal: PRINCIPAL,
        action: req.action,
        resource: { resource: req.resource, accountId: account },
        contextVariables: { 'aws:ResourceAccount': account, ...(req.context ?? {}) },
      },
      identityPolicies: [{ name: 'role', policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] } }],
      sessionPolicy: policy,
      // KMS authorizes only what the key policy allows: the default key policy delegates to the account's IAM
      // policies (AWS KMS Developer Guide, "Default key policy").
      ...(req.action.startsWith('kms:') ? { resourcePolicy: DEFAULT_KEY_POLICY(account) } : {}),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
    },
    {},
  );
  if (result.resultType === 'error') throw new Error(`simulation error for ${req.action} ${req.resource}: ${JSON.stringify(result.errors)}`);
  return result.overallResult;
}

const region = (r: string) => ({ 'aws:RequestedRegion': r });

describe('issued session policies, checked by an independent IAM policy evaluator', () => {
  it('sqs send-message: the queue in the decided region only — not another queue, region or account', async () => {
    const { policy } = issue(['sqs', 'send-message', '--queue-url', `https://sqs.us-east-1.amazonaws.com/${ACCOUNT}/orders`, '--message-body', 'hi']);
    const send = (resource: string, r = 'us-east-1', account = ACCOUNT) => evaluate(policy, { action: 'sqs:SendMessage', resource, account, context: region(r) });
    expect(await send(`arn:aws:sqs:us-east-1:${ACCOUNT}:orders`)).toBe('Allowed');
    expect(await send(`arn:aws:sqs:us-east-1:${ACCOUNT}:payments`)).not.toBe('Allowed');
    expect(await send(`arn:aws:sqs:us-east-1:${OTHER}:orders`, 'us-east-1', OTHER)).not.toBe('Allowed');
    // Same queue ARN, request sent to another region's endpoint: only aws:RequestedRegion stops it.
    expect(await send(`arn:aws:sqs:us-east-1:${ACCOUNT}:orders`, 'eu-west-1')).not.toBe('Allowed');
    expect(await evaluate(policy, { action: 'sqs:DeleteQueue', resource: `arn:aws:sqs:us-east-1:${ACCOUNT}:orders`, context: region('us-east-1') })).not.toBe('Allowed');
  });

  it("an ARN with no account field, as SAR writes MediaConnect's offering: that offering only", async () => {
    const { policy } = issue(['mediaconnect', 'describe-offering', '--offering-arn', 'arn:aws:mediaconnect:us-east-1:offering:o-1']);
    const describe = (resource: string) => evaluate(policy, { action: 'mediaconnect:DescribeOffering', resource, context: region('us-east-1') });
    expect(await describe('arn:aws:mediaconnect:us-east-1:offering:o-1')).toBe('Allowed');
    expect(await describe('arn:aws:mediaconnect:us-east-1:offering:o-2')).not.toBe('Allowed');
    expect(await describe('arn:aws:mediaconnect:eu-west-1:offering:o-1')).not.toBe('Allowed');
  });

  it('calls on `*` (no resource scoping) are held to the decided region', async () => {
    const { policy } = issue(['ec2', 'describe-instances', '--region', 'ap-southeast-2']);
    expect(await evaluate(policy, { action: 'ec2:DescribeInstances', resource: '*', context: region('ap-southeast-2') })).toBe('Allowed');
    expect(await evaluate(policy, { action: 'ec2:DescribeInstances', resource: '*', context: region('us-east-1') })).not.toBe('Allowed');
  });

  it('global services keep working: IAM requests are evaluated as us-east-1 whatever --region said', async () => {
    const { policy } = issue(['iam', 'get-role', '--role-name', 'deploy-role', '--region', 'eu-west-1']);
    expect(await evaluate(policy, { action: 'iam:GetRole', resource: `arn:aws:iam::${ACCOUNT}:role/deploy-role`, context: region('us-east-1') })).toBe('Allowed');
  });

  it('secretsmanager delete-secret with a recovery window: no force delete, no shorter window, no other region', async () => {
    const { policy } = issue(['secretsmanager', 'delete-secret', '--secret-id', 'app/db', '--recovery-window-in-days', '30']);
    const secret = `arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:app/db-AbCdEf`;
    const del = (context: Record<string, string>) => evaluate(policy, { action: 'secretsmanager:DeleteSecret', resource: secret, context: { ...region('us-east-1'), ...context } });
    expect(await del({ 'secretsmanager:RecoveryWindowInDays': '30' })).toBe('Allowed');
    expect(await del({ 'secretsmanager:ForceDeleteWithoutRecovery': 'true' })).not.toBe('Allowed');
    expect(await del({ 'secretsmanager:RecoveryWindowInDays': '7' })).not.toBe('Allowed');
    expect(await evaluate(policy, { action: 'secretsmanager:DeleteSecret', resource: secret, context: { ...region('eu-west-1'), 'secretsmanager:RecoveryWindowInDays': '30' } })).not.toBe('Allowed');
  });

  it('secretsmanager delete-secret without a window: the 30-day default, whether or not AWS sends the key as false', async () => {
    const { policy } = issue(['secretsmanager', 'delete-secret', '--secret-id', 'app/db']);
    const secret = `arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:app/db-AbCdEf`;
    const del = (context: Record<string, string>) => evaluate(policy, { action: 'secretsmanager:DeleteSecret', resource: secret, context: { ...region('us-east-1'), ...context } });
    expect(await del({})).toBe('Allowed');
    expect(await del({ 'secretsmanager:ForceDeleteWithoutRecovery': 'false' })).toBe('Allowed');
    expect(await del({ 'secretsmanager:ForceDeleteWithoutRecovery': 'true' })).not.toBe('Allowed');
    expect(await del({ 'secretsmanager:RecoveryWindowInDays': '7' })).not.toBe('Allowed');
  });

  it('s3 put-object and put-bucket-acl with a private ACL: no other canned ACL, no public grant, no other account', async () => {
    const put = issue(['s3api', 'put-object', '--bucket', 'example-bucket', '--key', 'a.txt', '--acl', 'private']).policy;
    const obj = 'arn:aws:s3:::example-bucket/a.txt';
    const acl = (policy: unknown, action: string, resource: string, context: Record<string, string>, account = ACCOUNT) =>
      evaluate(policy, { action, resource, account, context: { ...region('us-east-1'), ...context } });
    expect(await acl(put, 's3:PutObject', obj, { 's3:x-amz-acl': 'private' })).toBe('Allowed');
    expect(await acl(put, 's3:PutObject', obj, { 's3:x-amz-acl': 'public-read' })).not.toBe('Allowed');
    expect(await acl(put, 's3:PutObjectAcl', obj, { 's3:x-amz-acl': 'public-read-write' })).not.toBe('Allowed');
    expect(await acl(put, 's3:PutObject', obj, { 's3:x-amz-acl': 'private', 's3:x-amz-grant-read': 'uri=http://acs.amazonaws.com/groups/global/AllUsers' })).not.toBe('Allowed');
    // A same-named bucket in someone else's account (S3 ARNs carry no account): aws:ResourceAccount.
    expect(await acl(put, 's3:PutObject', obj, { 's3:x-amz-acl': 'private' }, OTHER)).not.toBe('Allowed');

    const bucketAcl = issue(['s3api', 'put-bucket-acl', '--bucket', 'example-bucket', '--acl', 'private']).policy;
    expect(await acl(bucketAcl, 's3:PutBucketAcl', 'arn:aws:s3:::example-bucket', { 's3:x-amz-acl': 'private' })).toBe('Allowed');
    expect(await acl(bucketAcl, 's3:PutBucketAcl', 'arn:aws:s3:::example-bucket', { 's3:x-amz-acl': 'public-read' })).not.toBe('Allowed');
    expect(await acl(bucketAcl, 's3:PutBucketAcl', 'arn:aws:s3:::example-bucket', { 's3:x-amz-acl': 'authenticated-read' })).not.toBe('Allowed');
  });

  it('s3 put-object without --acl: adding any canned ACL or grant is denied', async () => {
    const { policy } = issue(['s3api', 'put-object', '--bucket', 'example-bucket', '--key', 'a.txt']);
    const obj = 'arn:aws:s3:::example-bucket/a.txt';
    expect(await evaluate(policy, { action: 's3:PutObject', resource: obj, context: region('us-east-1') })).toBe('Allowed');
    expect(await evaluate(policy, { action: 's3:PutObject', resource: obj, context: { ...region('us-east-1'), 's3:x-amz-acl': 'public-read' } })).not.toBe('Allowed');
    expect(
      await evaluate(policy, { action: 's3:PutObject', resource: obj, context: { ...region('us-east-1'), 's3:x-amz-grant-full-control': `id=${OTHER}` } }),
    ).not.toBe('Allowed');
  });

  it('s3 cp with --acl (a custom command): the upload and its multipart parts are allowed, another ACL is not', async () => {
    const { policy } = issue(['s3', 'cp', 's3://source-bucket/k', 's3://dest-bucket/k', '--acl', 'bucket-owner-full-control']);
    const obj = 'arn:aws:s3:::dest-bucket/k';
    expect(await evaluate(policy, { action: 's3:PutObject', resource: obj, context: { ...region('us-east-1'), 's3:x-amz-acl': 'bucket-owner-full-control' } })).toBe('Allowed');
    // UploadPart is authorized as s3:PutObject and carries no x-amz-acl header.
    expect(await evaluate(policy, { action: 's3:PutObject', resource: obj, context: region('us-east-1') })).toBe('Allowed');
    expect(await evaluate(policy, { action: 's3:PutObject', resource: obj, context: { ...region('us-east-1'), 's3:x-amz-acl': 'public-read' } })).not.toBe('Allowed');
    expect(await evaluate(policy, { action: 's3:GetObject', resource: 'arn:aws:s3:::source-bucket/k', context: region('us-east-1') })).toBe('Allowed');
  });

  it('ssm put-parameter without --overwrite cannot overwrite; lambda add-permission cannot grant to another principal', async () => {
    const put = issue(['ssm', 'put-parameter', '--name', '/app/flag', '--value', 'on', '--type', 'String']).policy;
    const param = `arn:aws:ssm:us-east-1:${ACCOUNT}:parameter/app/flag`;
    const ssm = (context: Record<string, string>) => evaluate(put, { action: 'ssm:PutParameter', resource: param, context: { ...region('us-east-1'), ...context } });
    expect(await ssm({})).toBe('Allowed');
    expect(await ssm({ 'ssm:Overwrite': 'false' })).toBe('Allowed');
    expect(await ssm({ 'ssm:Overwrite': 'true' })).not.toBe('Allowed');

    const grant = issue(['lambda', 'add-permission', '--function-name', 'billing', '--statement-id', 's3', '--action', 'lambda:InvokeFunction', '--principal', 's3.amazonaws.com']).policy;
    const fn = `arn:aws:lambda:us-east-1:${ACCOUNT}:function:billing`;
    const add = (context: Record<string, string>) => evaluate(grant, { action: 'lambda:AddPermission', resource: fn, context: { ...region('us-east-1'), ...context } });
    expect(await add({ 'lambda:Principal': 's3.amazonaws.com' })).toBe('Allowed');
    expect(await add({ 'lambda:Principal': '*' })).not.toBe('Allowed');
    expect(await add({ 'lambda:Principal': 's3.amazonaws.com', 'lambda:FunctionUrlAuthType': 'NONE' })).not.toBe('Allowed');
  });

  it('ec2 ingress: another CIDR is allowed by the session policy (no condition key), so the call is not enforceable and runs on the broker', async () => {
    const argv = ['ec2', 'authorize-security-group-ingress', '--group-id', 'sg-0123456789abcdef0', '--protocol', 'tcp', '--port', '22', '--cidr', '10.1.0.0/16'];
    const { inv, policy } = issue(argv);
    const sg = `arn:aws:ec2:us-east-1:${ACCOUNT}:security-group/sg-0123456789abcdef0`;
    expect(await evaluate(policy, { action: 'ec2:AuthorizeSecurityGroupIngress', resource: sg, context: region('us-east-1') })).toBe('Allowed');
    // The variant (0.0.0.0/0) is the same action on the same resource: IAM cannot tell them apart…
    const wide = parse(argv.map((a) => (a === '10.1.0.0/16' ? '0.0.0.0/0' : a)));
    expect(decide(policySet, { invocation: wide, caller, target }).decision).toBe('deny');
    expect(wide.permissions).toEqual(inv.permissions);
    // …so the analysis behind `execution: auto` must refuse to hand these credentials out.
    const verdict = sessionPolicyEnforces({ policy: policySet, invocation: inv, caller, target });
    expect(verdict.enforceable).toBe(false);
    expect(verdict.reasons.some((r) => r.startsWith('rule deny-open-ingress-ipv4 (') && r.includes('parameter **.CidrIp'))).toBe(true);
  });
});

// The corpus (read-only, ../shared beside the repository): every decided call that gets a session must be
// allowed by its own session policy, request by request, with the context AWS would put in each request.
const corpus = readFileSync(resolve(repoRoot, '../shared/corpus/cli-cases.jsonl'), 'utf8')
  .split('\n')
  .filter((l) => l.trim())
  .map((l) => JSON.parse(l) as { argv: string[] });

/** A concrete resource for an ARN pattern (`secret:app/db-??????` names one real secret). */
const concrete = (arn: string) => (arn === '*' ? '*' : arn.replace(/\?/g, 'a').replace(/\*/g, 'x'));

/**
 * What AWS puts in the request context for the keys session policies can test, written from the request
 * semantics (not from session-policy.ts): the endpoint's region, the resource's account, the service a KMS call
 * comes through, and the request headers/members the decided call sends.
 */
function requestContext(inv: ParsedInvocation, p: Permission): Record<string, string> {
  const ctx: Record<string, string> = { 'aws:RequestedRegion': inv.region };
  if (p.viaService) ctx['kms:ViaService'] = p.viaService;
  const acl = inv.kind === 'api' ? inv.params.ACL : inv.cliArgs?.acl;
  if (typeof acl === 'string' && p.action.startsWith('s3:')) ctx['s3:x-amz-acl'] = acl;
  const sent = (member: string, key: string) => {
    if (inv.params[member] !== undefined) ctx[key] = String(inv.params[member]);
  };
  if (p.action === 'ssm:PutParameter') sent('Overwrite', 'ssm:Overwrite');
  if (p.action === 'lambda:AddPermission') sent('Principal', 'lambda:Principal');
  if (p.action === 'kms:PutKeyPolicy' || p.action === 'kms:CreateKey') sent('BypassPolicyLockoutSafetyCheck', 'kms:BypassPolicyLockoutSafetyCheck');
  if (p.action === 'secretsmanager:DeleteSecret') {
    if (inv.params.ForceDeleteWithoutRecovery !== undefined) ctx['secretsmanager:ForceDeleteWithoutRecovery'] = String(inv.params.ForceDeleteWithoutRecovery);
    if (inv.params.RecoveryWindowInDays !== undefined) ctx['secretsmanager:RecoveryWindowInDays'] = String(inv.params.RecoveryWindowInDays);
  }
  return ctx;
}

const GLOBAL = new Set(['iam', 'sts', 'organizations', 'cloudfront', 'route53']);

describe('the corpus, through the evaluator', () => {
  it('every decided call is allowed by its own session policy', async () => {
    let checked = 0;
    for (const c of corpus) {
      let inv: ParsedInvocation;
      try {
        inv = parse(c.argv);
      } catch (e) {
        expect(e, c.argv.join(' ')).toBeInstanceOf(GuardError);
        continue;
      }
      if (inv.permissions.length === 0 || decide(policySet, { invocation: inv, caller, target }).decision === 'deny') continue;
      let json: string;
      try {
        json = buildSessionPolicy(inv.permissions, { resourceAccounts: [ACCOUNT], invocation: inv });
      } catch (e) {
        expect((e as GuardError).code, c.argv.join(' ')).toBe('policy_too_large');
        continue;
      }
      const policy = JSON.parse(json) as unknown;
      for (const p of inv.permissions) {
        for (const arn of p.resources) {
          const context = requestContext(inv, p);
          // A global service's requests are evaluated as us-east-1 (IAM User Guide, aws:RequestedRegion).
          if (GLOBAL.has(p.action.split(':')[0]!)) context['aws:RequestedRegion'] = 'us-east-1';
          const account = /^arn:[^:]+:[^:]+:[^:]*:(\d{12}):/.exec(arn)?.[1] ?? ACCOUNT;
          const result = await evaluate(policy, { action: p.action, resource: concrete(arn), account, context });
          expect(result, `${c.argv.join(' ')}: ${p.action} on ${arn}`).toBe('Allowed');
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(40);
  }, 60_000);
});
