import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GuardError } from '../../src/errors.js';
import type { Permission } from '../../src/invocation/types.js';
import { DENY_ALL, SESSION_POLICY_MAX_CHARS, buildSessionPolicy, sessionPolicyFor, type SessionPolicy } from '../../src/broker/session-policy.js';

const ACCOUNT = '111122223333';
const OTHER = '999988887777';

/**
 * A tiny IAM evaluator for session policies: explicit Deny wins, otherwise some Allow statement must match the
 * action (case-insensitive, `*`/`?` wildcards), the resource (case-sensitive wildcards) and its conditions
 * (only StringEquals is used by the builder). IAM User Guide, "Policy evaluation logic".
 */
function globMatch(pattern: string, value: string, ci: boolean): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, ci ? 'is' : 's');
  return re.test(value);
}
const list = (x: string | string[]) => (Array.isArray(x) ? x : [x]);
function allows(policy: SessionPolicy, action: string, resource: string, context: Record<string, string>): boolean {
  const matches = (s: SessionPolicy['Statement'][number]) =>
    list(s.Action).some((a) => globMatch(a, action, true)) &&
    list(s.Resource).some((r) => globMatch(r, resource, false)) &&
    Object.entries(s.Condition ?? {}).every(([op, kv]) => {
      if (op !== 'StringEquals') throw new Error(`evaluator: unsupported operator ${op}`);
      return Object.entries(kv).every(([k, v]) => context[k] !== undefined && list(v).includes(context[k]!));
    });
  if (policy.Statement.some((s) => s.Effect === 'Deny' && matches(s))) return false;
  return policy.Statement.some((s) => s.Effect === 'Allow' && matches(s));
}

const build = (perms: Permission[]) => JSON.parse(buildSessionPolicy(perms, { resourceAccounts: [ACCOUNT], invocation: null })) as SessionPolicy;

describe('session policy', () => {
  it('allows exactly the derived action/resource pairs', () => {
    const perms: Permission[] = [
      { action: 's3:GetObject', resources: ['arn:aws:s3:::data/report.csv'], derived: true },
      { action: 'kms:Decrypt', resources: [`arn:aws:kms:eu-west-1:${ACCOUNT}:key/abc`], derived: true },
    ];
    const p = build(perms);
    const ctx = { 'aws:ResourceAccount': ACCOUNT };
    expect(allows(p, 's3:GetObject', 'arn:aws:s3:::data/report.csv', ctx)).toBe(true);
    expect(allows(p, 'kms:Decrypt', `arn:aws:kms:eu-west-1:${ACCOUNT}:key/abc`, ctx)).toBe(true);
    // nothing broader
    expect(allows(p, 's3:GetObject', 'arn:aws:s3:::data/other.csv', ctx)).toBe(false);
    expect(allows(p, 's3:PutObject', 'arn:aws:s3:::data/report.csv', ctx)).toBe(false);
    expect(allows(p, 'kms:Decrypt', 'arn:aws:s3:::data/report.csv', ctx)).toBe(false);
    expect(allows(p, 's3:GetObject', `arn:aws:kms:eu-west-1:${ACCOUNT}:key/abc`, ctx)).toBe(false);
    // a same-named bucket in another account: refused by the aws:ResourceAccount condition
    expect(allows(p, 's3:GetObject', 'arn:aws:s3:::data/report.csv', { 'aws:ResourceAccount': OTHER })).toBe(false);
  });

  it('uses Resource "*" only for non-derived permissions', () => {
    const p = build([
      { action: 'ec2:DescribeInstances', resources: ['*'], derived: false },
      { action: 'dynamodb:GetItem', resources: [`arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/T`], derived: true },
    ]);
    expect(p.Statement).toEqual([
      { Effect: 'Allow', Action: 'dynamodb:GetItem', Resource: `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/T` },
      { Effect: 'Allow', Action: 'ec2:DescribeInstances', Resource: '*' },
    ]);
  });

  it('merges actions sharing a resource set and resource sets sharing an action set', () => {
    const t = (n: string) => `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/${n}`;
    const p = build([
      { action: 'dynamodb:GetItem', resources: [t('A')], derived: true },
      { action: 'dynamodb:PutItem', resources: [t('A')], derived: true },
      { action: 'dynamodb:GetItem', resources: [t('B')], derived: true },
      { action: 'dynamodb:PutItem', resources: [t('B')], derived: true },
    ]);
    expect(p.Statement).toEqual([{ Effect: 'Allow', Action: ['dynamodb:GetItem', 'dynamodb:PutItem'], Resource: [t('A'), t('B')] }]);
  });

  it('a permissionless call gets a deny-all policy that allows nothing', () => {
    const p = build([]);
    expect(p).toEqual(DENY_ALL);
    expect(allows(p, 's3:ListAllMyBuckets', '*', {})).toBe(false);
    expect(allows(p, 'sts:GetCallerIdentity', '*', {})).toBe(false);
  });

  it('refuses rather than widens when the exact policy is too long', () => {
    const perms: Permission[] = Array.from({ length: 40 }, (_, i) => ({
      action: 's3:GetObject',
      resources: [`arn:aws:s3:::bucket-${i}/a/rather/long/object/key/number-${i}.json`],
      derived: true,
    }));
    try {
      buildSessionPolicy(perms, { resourceAccounts: [ACCOUNT], invocation: null });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(GuardError);
      expect((e as GuardError).code).toBe('policy_too_large');
      expect((e as GuardError).exitCode).toBe(77);
      expect((e as GuardError).message).not.toContain('\n');
    }
    // Just under the limit still passes, compact.
    const fit = buildSessionPolicy(perms.slice(0, 20), { resourceAccounts: [ACCOUNT], invocation: null });
    expect(fit.length).toBeLessThanOrEqual(SESSION_POLICY_MAX_CHARS);
    expect(fit).not.toMatch(/\s/);
  });

  it('rejects malformed actions and resources instead of copying them into a policy', () => {
    expect(() => build([{ action: 's3:Get Object', resources: ['*'], derived: false }])).toThrow(GuardError);
    expect(() => build([{ action: '*', resources: ['*'], derived: false }])).toThrow(GuardError);
    expect(() => build([{ action: 's3:GetObject', resources: ['bucket/key'], derived: true }])).toThrow(GuardError);
    expect(() => build([{ action: 's3:GetObject', resources: [], derived: true }])).toThrow(GuardError);
    // The account field: 12 digits, `aws`, empty or `*`, or the word SAR's own template for that service has there
    // (MediaConnect's offering) — not another word, and not that word in another service.
    for (const bad of ['arn:aws:lambda:us-east-1:offering:function:f', 'arn:aws:mediaconnect:us-east-1:flow:f', 'arn:aws:sqs:us-east-1:12345:q', 'arn:aws:sqs:us-east-1:${aws:PrincipalAccount}:q']) {
      expect(() => build([{ action: 'sqs:SendMessage', resources: [bad], derived: true }]), bad).toThrow(GuardError);
    }
    expect(() => build([{ action: 'mediaconnect:DescribeOffering', resources: ['arn:aws:mediaconnect:us-east-1:offering:o-1'], derived: true }])).not.toThrow();
  });

  // Property: for any permission set, the policy allows a pair iff some permission covers it — never more.
  const actionArb = fc.constantFrom('s3:GetObject', 's3:PutObject', 's3:ListBucket', 'dynamodb:GetItem', 'ec2:DescribeInstances', 'kms:Decrypt');
  const resourceArb = fc.constantFrom(
    'arn:aws:s3:::b1',
    'arn:aws:s3:::b1/k',
    'arn:aws:s3:::b2/k',
    `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/T`,
    `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/U`,
    `arn:aws:kms:us-east-1:${ACCOUNT}:key/k1`,
  );
  const permArb: fc.Arbitrary<Permission> = fc.oneof(
    fc.record({ action: actionArb, resources: fc.uniqueArray(resourceArb as fc.Arbitrary<string>, { minLength: 1, maxLength: 3 }), derived: fc.constant<boolean>(true) }),
    fc.record({ action: actionArb, resources: fc.constant<string[]>(['*']), derived: fc.constant<boolean>(false) }),
  );
  const probeResources = ['arn:aws:s3:::b1', 'arn:aws:s3:::b1/k', 'arn:aws:s3:::b2/k', 'arn:aws:s3:::b3', `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/T`, `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/U`, `arn:aws:kms:us-east-1:${ACCOUNT}:key/k1`, `arn:aws:kms:us-east-1:${OTHER}:key/k1`, '*'];
  const probeActions = ['s3:GetObject', 's3:PutObject', 's3:ListBucket', 's3:DeleteObject', 'dynamodb:GetItem', 'dynamodb:DeleteTable', 'ec2:DescribeInstances', 'kms:Decrypt', 'iam:PassRole'];

  it('property: allows every permission pair and nothing else', () => {
    fc.assert(
      fc.property(fc.array(permArb, { minLength: 1, maxLength: 8 }), (perms) => {
        const p = build(perms);
        for (const a of probeActions) {
          for (const r of probeResources) {
            const covered = perms.some((q) => q.action === a && (q.resources.includes('*') || q.resources.includes(r)));
            const isS3 = r.startsWith('arn:aws:s3:::');
            // Resource account context as AWS would supply it for this resource.
            const ctx = { 'aws:ResourceAccount': r.includes(OTHER) ? OTHER : ACCOUNT };
            if (allows(p, a, r, ctx) !== covered) return false;
            // An S3 ARN owned by another account is never allowed through a derived grant.
            if (isS3 && !perms.some((q) => q.action === a && q.resources.includes('*')) && allows(p, a, r, { 'aws:ResourceAccount': OTHER })) return false;
          }
        }
        return true;
      }),
      { numRuns: 300 },
    );
  });

  it('property: structurally, every statement pair is a permission pair', () => {
    fc.assert(
      fc.property(fc.array(permArb, { minLength: 1, maxLength: 8 }), (perms) => {
        const pairs = new Set(perms.flatMap((q) => q.resources.map((r) => `${q.action} ${r}`)));
        const doc = sessionPolicyFor(perms, { resourceAccounts: [ACCOUNT], invocation: null });
        return doc.Statement.every((s) => s.Effect === 'Allow' && list(s.Action).every((a) => list(s.Resource).every((r) => pairs.has(`${a} ${r}`))));
      }),
      { numRuns: 300 },
    );
  });
});
