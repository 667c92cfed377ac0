import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseInvocation } from '../../src/invocation/parse.js';
import { decide } from '../../src/policy/decide.js';
import { sessionPolicyEnforces } from '../../src/policy/enforceable.js';
import { loadPolicies } from '../../src/policy/load.js';
import type { Caller } from '../../src/policy/types.js';
import { fromText } from './helpers.js';

// sessionPolicyEnforces decides whether `auto` may hand a grant's credentials out (issue 7). Each case tries to
// break it: a rule that could decide a request the credentials permit more strictly than the decided call must
// make it answer false, and a rule the session policy holds fixed must not.
const ACCOUNT = '111122223333';
const caller: Caller = { subject: 'alice', groups: ['developers'] };
const target = { name: 'dev', account: ACCOUNT, region: 'us-east-1' };
const parse = (argv: string[], region = 'us-east-1') =>
  parseInvocation(argv, { account: ACCOUNT, region, cwd: '/w', env: { HOME: '/h' }, readFile: () => Buffer.from('x') });

function check(policyText: string, argv: string[], region?: string) {
  const policy = fromText(policyText, 'p.yaml');
  const invocation = parse(argv, region);
  const decision = decide(policy, { invocation, caller, target });
  return { decision, ...sessionPolicyEnforces({ policy, invocation, caller, target }) };
}

const INGRESS = ['ec2', 'authorize-security-group-ingress', '--group-id', 'sg-0123456789abcdef0', '--protocol', 'tcp', '--port', '22', '--cidr', '10.1.0.0/16'];
const DELETE_SECRET = ['secretsmanager', 'delete-secret', '--secret-id', 'app/db', '--recovery-window-in-days', '30'];

describe('sessionPolicyEnforces', () => {
  it('a parameter rule with a different outcome (wide ingress) is not enforceable, and says which rule and why', () => {
    const r = check(
      `version: 1
default: deny
rules:
  - id: deny-wide-ingress
    effect: deny
    reason: wide ingress
    match:
      params: [{ path: '**.CidrIp', cidrPrefixMax: 8 }]
  - id: allow-ec2
    effect: allow
    reason: ec2
    match: { actions: ['ec2:*'] }
`,
      INGRESS,
    );
    expect(r.decision.decision).toBe('allow');
    expect(r.enforceable).toBe(false);
    expect(r.reasons).toEqual([
      'rule deny-wide-ingress (p.yaml:4) depends on parameter **.CidrIp, which the session policy cannot enforce: it could deny ec2:AuthorizeSecurityGroupIngress',
    ]);
  });

  it('the same call under rules that depend only on actions and resources is enforceable', () => {
    const r = check(
      `version: 1
default: deny
rules:
  - id: deny-other-groups
    effect: deny
    reason: only the web group
    match: { resources: ['arn:aws:ec2:*:*:security-group/sg-9*'] }
  - id: allow-ec2
    effect: allow
    reason: ec2
    match: { actions: ['ec2:*'] }
`,
      INGRESS,
    );
    expect(r).toMatchObject({ enforceable: true, reasons: [] });
  });

  it('a region rule is enforceable where aws:RequestedRegion pins the region (regional service)', () => {
    const policy = `version: 1
default: deny
rules:
  - id: deny-eu
    effect: deny
    reason: no EU
    match: { regions: ['eu-*'] }
  - id: allow-all
    effect: allow
    reason: ok
    match: { actions: ['*'] }
`;
    expect(check(policy, ['sqs', 'list-queues'])).toMatchObject({ enforceable: true, reasons: [] });
    // `--region` in the argv is the same fact: pinned as well.
    expect(check(policy.replace("regions: ['eu-*']", "globals: [{ path: region, glob: ['eu-*'] }]"), ['sqs', 'list-queues', '--region', 'us-west-2'])).toMatchObject({ enforceable: true });
  });

  it('a region rule is not enforceable for a global service (IAM: aws:RequestedRegion is us-east-1)', () => {
    const r = check(
      `version: 1
default: deny
rules:
  - id: deny-eu
    effect: deny
    reason: no EU
    match: { regions: ['eu-*'] }
  - id: allow-all
    effect: allow
    reason: ok
    match: { actions: ['*'] }
`,
      ['iam', 'list-users'],
    );
    expect(r.enforceable).toBe(false);
    expect(r.reasons[0]).toMatch(/^rule deny-eu \(p\.yaml:4\) depends on the region \(iam:ListUsers is not held to us-east-1 by the session policy: a global service/);
  });

  const SECRET_POLICY = `version: 1
default: deny
rules:
  - id: deny-force-delete
    effect: deny
    reason: no force delete
    match: { params: [{ path: ForceDeleteWithoutRecovery, equals: true }] }
  - id: deny-short-window
    effect: deny
    reason: at least 7 days
    match: { params: [{ path: RecoveryWindowInDays, lt: 7 }] }
  - id: allow-deletes
    effect: allow
    reason: deletes with a recovery window
    match: { actions: ['secretsmanager:DeleteSecret'] }
`;

  it('a parameter pinned to a condition key (ForceDeleteWithoutRecovery, RecoveryWindowInDays) is enforceable', () => {
    const r = check(SECRET_POLICY, DELETE_SECRET);
    expect(r.decision.decision).toBe('allow');
    expect(r).toMatchObject({ enforceable: true, reasons: [] });
    // Without a recovery window the secret is deleted after 30 days; the session pins RecoveryWindowInDays absent.
    expect(check(SECRET_POLICY, DELETE_SECRET.slice(0, 4))).toMatchObject({ enforceable: true });
  });

  it('a path that reaches beyond the pinned member (`**.RecoveryWindowInDays`) is not held by the pin', () => {
    const r = check(SECRET_POLICY.replace('path: RecoveryWindowInDays', "path: '**.RecoveryWindowInDays'"), DELETE_SECRET);
    expect(r.enforceable).toBe(false);
    expect(r.reasons).toEqual([
      'rule deny-short-window (p.yaml:8) depends on parameter **.RecoveryWindowInDays, which the session policy cannot enforce: it could deny secretsmanager:DeleteSecret',
    ]);
  });

  it('an approved call is never enforceable: the approval covers one exact call, once', () => {
    const r = check(SECRET_POLICY.replace("effect: allow\n    reason: deletes with a recovery window", "effect: approve\n    reason: deletes\n    approval: { groups: [approvers], count: 1 }"), DELETE_SECRET);
    expect(r.decision.decision).toBe('approve');
    expect(r.enforceable).toBe(false);
    expect(r.reasons).toEqual([
      'the call needs approval (rule allow-deletes (p.yaml:12)): an approval covers this exact call once, which a session cannot enforce — its credentials could repeat it or change its unpinned parameters',
    ]);
  });

  it('a parameter rule on an unmapped member of the same call is not enforceable', () => {
    const r = check(
      `version: 1
default: deny
rules:
  - id: deny-kms
    effect: deny
    reason: no
    match: { params: [{ path: Description, exists: true }] }
  - id: allow-all
    effect: allow
    reason: ok
    match: { actions: ['*'] }
`,
      DELETE_SECRET,
    );
    expect(r.enforceable).toBe(false);
    expect(r.reasons[0]).toContain('depends on parameter Description');
  });

  it('commands and risk signals cannot be enforced; a command rule about another command still counts (same action)', () => {
    const base = (match: string) => `version: 1
default: deny
rules:
  - id: r
    effect: deny
    reason: no
    match: ${match}
  - id: allow-all
    effect: allow
    reason: ok
    match: { actions: ['*'] }
`;
    // DeletePublicAccessBlock is authorized by s3:PutBucketPublicAccessBlock, like the stronger setting.
    const pab = ['s3api', 'put-public-access-block', '--bucket', 'b', '--public-access-block-configuration', 'BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true'];
    const r = check(base("{ commands: ['s3api delete-public-access-block'] }"), pab);
    expect(r.decision.decision).toBe('allow');
    expect(r.enforceable).toBe(false);
    expect(r.reasons[0]).toContain('depends on the CLI command (s3api delete-public-access-block)');
    const risk = check(base('{ risks: [internet_exposure] }'), ['s3api', 'list-buckets']);
    expect(risk.enforceable).toBe(false);
    expect(risk.reasons[0]).toContain('depends on risk signal internet_exposure');
  });

  it('rules on global options and the signals they raise do not count: they are about the local CLI, not the session', () => {
    const r = check(
      `version: 1
default: deny
rules:
  - id: deny-endpoint
    effect: deny
    reason: no
    match: { risks: [endpoint_override, credential_override] }
  - id: deny-profile
    effect: deny
    reason: no
    match: { globals: [{ path: profile, exists: true }] }
  - id: allow-all
    effect: allow
    reason: ok
    match: { actions: ['*'] }
`,
      ['sqs', 'list-queues'],
    );
    expect(r).toMatchObject({ enforceable: true, reasons: [] });
  });

  it('an allow that relies on an unenforceable fact leaves a stricter default for the variants', () => {
    const r = check(
      `version: 1
default: { effect: approve, approval: { groups: [approvers], count: 1 } }
rules:
  - id: allow-small-ingress
    effect: allow
    reason: narrow ingress is fine
    match: { actions: ['ec2:AuthorizeSecurityGroupIngress'], params: [{ path: '**.CidrIp', glob: ['10.*'] }] }
`,
      INGRESS,
    );
    expect(r.decision.decision).toBe('allow');
    expect(r.enforceable).toBe(false);
    expect(r.reasons).toEqual([
      'rule allow-small-ingress (p.yaml:4) allows ec2:AuthorizeSecurityGroupIngress only on parameter **.CidrIp, which the session policy cannot enforce: without it the default (approve) applies',
    ]);
  });

  it('an approve rule a variant could meet makes an allowed call unenforceable', () => {
    const r = check(
      `version: 1
default: deny
rules:
  - id: allow-deletes
    effect: allow
    reason: deletes
    match: { actions: ['secretsmanager:DeleteSecret'] }
  - id: approve-described
    effect: approve
    reason: described
    approval: { groups: [security], count: 2 }
    match: { params: [{ path: Description, exists: true }] }
`,
      DELETE_SECRET,
    );
    expect(r.enforceable).toBe(false);
    expect(r.reasons[0]).toBe(
      'rule approve-described (p.yaml:8) depends on parameter Description, which the session policy cannot enforce: it could require approval for secretsmanager:DeleteSecret',
    );
  });

  it('the caller, the target and the resources are fixed facts of the session', () => {
    const r = check(
      `version: 1
default: deny
rules:
  - id: deny-others
    effect: deny
    reason: no
    match: { groups: [contractors], targets: [prod] }
  - id: deny-foreign
    effect: deny
    reason: no
    match: { crossAccount: true }
  - id: allow-all
    effect: allow
    reason: ok
    match: { actions: ['*'] }
`,
      ['sqs', 'send-message', '--queue-url', `https://sqs.us-east-1.amazonaws.com/${ACCOUNT}/q`, '--message-body', 'x'],
    );
    expect(r).toMatchObject({ enforceable: true, reasons: [] });
  });

  it('a denied call is never enforceable (no session), a call without permissions always is', () => {
    const policy = `version: 1
default: deny
rules:
  - id: allow-sts
    effect: allow
    reason: ok
    match: { actions: ['sts:*'] }
`;
    expect(check(policy, ['sqs', 'list-queues']).enforceable).toBe(false);
    expect(check(policy, ['sts', 'get-caller-identity'])).toMatchObject({ enforceable: true, reasons: [] });
  });

  it('under policies/default.yaml, which leans on risk signals, calls run on the broker (and say why)', () => {
    const policy = loadPolicies([resolve(__dirname, '../../policies/default.yaml')]);
    const invocation = parse(['s3api', 'list-buckets']);
    const r = sessionPolicyEnforces({ policy, invocation, caller, target });
    expect(r.enforceable).toBe(false);
    expect(r.reasons.some((x) => x.startsWith('rule approve-secret-read ('))).toBe(true);
  });
});

describe('sessionPolicyEnforces and other accounts', () => {
  const POLICY = `version: 1
default: deny
rules:
  - id: deny-foreign-writes
    effect: deny
    reason: no writes elsewhere
    match: { crossAccount: true, access: [Write] }
  - id: allow-all
    effect: allow
    reason: ok
    match: { actions: ['*'] }
`;
  it('a queue of the target account is a fixed fact; a `Resource: "*"` permission is not (conservatively)', () => {
    expect(check(POLICY, ['sqs', 'send-message', '--queue-url', `https://sqs.us-east-1.amazonaws.com/${ACCOUNT}/q`, '--message-body', 'x'])).toMatchObject({ enforceable: true });
    // A statement on `*` lets a request name any ARN, another account's included; the analysis does not try to
    // tell which actions can name none (ListQueues cannot), so it answers no.
    const open = check(POLICY.replace('access: [Write]', 'access: [Read]'), ['sqs', 'list-queues']);
    expect(open.enforceable).toBe(false);
    expect(open.reasons[0]).toContain('depends on which of its resources a request names');
  });
});
