import { describe, expect, test } from 'vitest';
import { decide, explainDecision } from '../../src/policy/decide.js';
import { agent, devTarget, input, inv } from './fixtures.js';
import { fromFiles, fromText, rule } from './helpers.js';

const W = { 'iam:CreateUser': 'Write', 's3:GetObject': 'Read', 's3:PutObject': 'Write', 's3:ListBucket': 'List', 's3:DeleteObject': 'Write', 's3:ListAllMyBuckets': 'List', 'ec2:DescribeInstances': 'List', 'iam:PassRole': 'Write', 'lambda:CreateFunction': 'Write' } as const;
const getObj = (arn = 'arn:aws:s3:::b/k') => inv({ perms: [['s3:GetObject', [arn]]], access: W });

describe('action globs', () => {
  test('match case-insensitively, as IAM does — `IAM:createuser` cannot dodge a deny on iam:CreateUser', () => {
    const set = fromText(rule('deny', '{ actions: ["iam:CreateUser"] }', { def: 'allow' }));
    for (const a of ['iam:CreateUser', 'IAM:createuser', 'Iam:CREATEUSER']) {
      expect(decide(set, input(inv({ perms: [[a, ['arn:aws:iam::111122223333:user/x']]], access: { [a]: 'Write' } }))).decision).toBe('deny');
    }
  });
  test('`*` and `?` wildcards; no partial matches', () => {
    const set = fromText(rule('allow', '{ actions: ["s3:Get*", "ec2:Describe?nstances"] }'));
    expect(decide(set, input(getObj())).decision).toBe('allow');
    expect(decide(set, input(inv({ perms: [['ec2:DescribeInstances']], access: W }))).decision).toBe('allow');
    expect(decide(set, input(inv({ perms: [['s3:PutObject', ['arn:aws:s3:::b/k']]], access: W }))).decision).toBe('deny');
    expect(decide(set, input(inv({ perms: [['xs3:GetObject']], access: W }))).decision).toBe('deny');
  });
  test('notActions excludes', () => {
    const set = fromText(rule('deny', '{ actions: ["iam:*"], notActions: ["iam:PassRole"] }', { def: 'allow' }));
    expect(decide(set, input(inv({ perms: [['iam:PassRole', ['arn:aws:iam::1:role/r']]], access: W }))).decision).toBe('allow');
    expect(decide(set, input(inv({ perms: [['iam:CreateUser', ['arn:aws:iam::1:user/u']]], access: W }))).decision).toBe('deny');
  });
  test('a rule for one service never matches another (prefix index)', () => {
    const set = fromText(rule('allow', '{ actions: ["s3:*"] }'));
    expect(decide(set, input(inv({ perms: [['ec2:DescribeInstances']], access: W }))).decision).toBe('deny');
  });
});

describe('access levels', () => {
  test('match the access level of each permission', () => {
    const set = fromText(rule('allow', '{ access: [List, Read] }'));
    expect(decide(set, input(getObj())).decision).toBe('allow');
    expect(decide(set, input(inv({ perms: [['s3:PutObject', ['arn:aws:s3:::b/k']]], access: W }))).decision).toBe('deny');
  });
  test('an action with no known access level is never allowed by an access rule, but is caught by a restrictive one', () => {
    const allow = fromText(rule('allow', '{ access: [Read] }'));
    expect(decide(allow, input(inv({ perms: [['s3:Mystery', ['arn:aws:s3:::b']]], access: {} }))).decision).toBe('deny');
    const deny = fromText(rule('deny', '{ access: [Permissions management] }', { def: 'allow' }));
    expect(decide(deny, input(inv({ perms: [['s3:Mystery', ['arn:aws:s3:::b']]], access: {} }))).decision).toBe('deny');
  });
});

describe('resources', () => {
  const scoped = rule('allow', '{ resources: ["arn:aws:s3:::b/*"] }');
  test('a resource-scoped allow covers matching ARNs only', () => {
    const set = fromText(scoped);
    expect(decide(set, input(getObj('arn:aws:s3:::b/k'))).decision).toBe('allow');
    expect(decide(set, input(getObj('arn:aws:s3:::other/k'))).decision).toBe('deny');
  });
  test('a resource-scoped allow never matches an underived `*`', () => {
    const set = fromText(scoped);
    expect(decide(set, input(inv({ perms: [['s3:GetObject', ['*'], false]], access: W }))).decision).toBe('deny');
  });
  test('a resource-scoped allow needs EVERY resource of the permission covered', () => {
    const set = fromText(scoped);
    const p = inv({ perms: [['s3:GetObject', ['arn:aws:s3:::b/k', 'arn:aws:s3:::other/k']]], access: W });
    expect(decide(set, input(p)).decision).toBe('deny');
  });
  test('a wildcard resource is covered only by a glob that covers all it stands for', () => {
    const set = fromText(rule('allow', '{ resources: ["arn:aws:s3:::b/tmp/?"] }'));
    expect(decide(set, input(getObj('arn:aws:s3:::b/tmp/*'))).decision).toBe('deny');
    expect(decide(fromText(scoped), input(getObj('arn:aws:s3:::b/tmp/*'))).decision).toBe('allow');
  });
  test('a resource-scoped deny matches an underived `*` (it could be that resource)', () => {
    const set = fromText(rule('deny', '{ resources: ["arn:aws:s3:::secret-*"] }', { def: 'allow' }));
    expect(decide(set, input(inv({ perms: [['s3:GetObject', ['*'], false]], access: W }))).decision).toBe('deny');
  });
  test('a resource-scoped deny does not match an action that supports no resource (derived `*`), as in IAM', () => {
    const set = fromText(rule('deny', '{ resources: ["arn:aws:s3:::secret-*"] }', { def: 'allow' }));
    expect(decide(set, input(inv({ perms: [['s3:ListAllMyBuckets', ['*'], true]], access: W }))).decision).toBe('allow');
  });
  test('a deny touches a wildcard resource that overlaps it, and matches case-insensitively', () => {
    const set = fromText(rule('deny', '{ resources: ["arn:aws:s3:::b/secret/*"] }', { def: 'allow' }));
    expect(decide(set, input(getObj('arn:aws:s3:::b/*'))).decision).toBe('deny');
    expect(decide(set, input(getObj('arn:aws:s3:::b/SECRET/x'))).decision).toBe('deny');
    expect(decide(set, input(getObj('arn:aws:s3:::b/public/x'))).decision).toBe('allow');
  });
  test('`resources: ["*"]` matches everything, derived or not', () => {
    const set = fromText(rule('allow', '{ resources: ["*"] }'));
    expect(decide(set, input(inv({ perms: [['s3:GetObject', ['*'], false]], access: W }))).decision).toBe('allow');
  });
});

describe('commands, kinds, risks, params, globals', () => {
  test('command globs', () => {
    const set = fromText(rule('deny', '{ commands: ["ec2 terminate-*", "s3 rb"] }', { def: 'allow' }));
    const e = (command: string, subcommand: string) => decide(set, input(inv({ command, subcommand, perms: [['ec2:DescribeInstances']], access: W }))).decision;
    expect(e('ec2', 'terminate-instances')).toBe('deny');
    expect(e('s3', 'rb')).toBe('deny');
    expect(e('s3', 'rbx')).toBe('allow');
    expect(e('EC2', 'Terminate-Instances')).toBe('deny');
  });
  test('kinds: calls without actions only match rules without per-permission conditions', () => {
    const set = fromText(`version: 1
default: deny
rules:
  - { id: a, effect: allow, reason: r, match: { actions: ['*'] } }
  - { id: help, effect: allow, reason: r, match: { kinds: [no_api_call] } }
`);
    expect(decide(set, input(inv({ kind: 'no_api_call' }))).rule).toBe('help');
    expect(decide(set, input(inv({ kind: 'local' }))).decision).toBe('deny');
  });
  test('an API call with no derived permission is denied whatever the policy says', () => {
    const set = fromText(rule('allow', '{}'));
    expect(decide(set, input(inv({ kind: 'api', perms: [] }))).decision).toBe('deny');
  });
  test('risks (any) and risksAll (every)', () => {
    const any = fromText(rule('deny', '{ risks: [destructive, bulk] }', { def: 'allow' }));
    const all = fromText(rule('deny', '{ risksAll: [secret_read, cross_account] }', { def: 'allow' }));
    const p = (risks: any[]) => input(inv({ perms: [['s3:GetObject', ['arn:aws:s3:::b/k']]], access: W, risks }));
    expect(decide(any, p(['bulk'])).decision).toBe('deny');
    expect(decide(any, p(['write'])).decision).toBe('allow');
    expect(decide(all, p(['secret_read'])).decision).toBe('allow');
    expect(decide(all, p(['secret_read', 'cross_account'])).decision).toBe('deny');
  });
  test('params: CIDR anywhere, in nested arrays and in --cli-input-json-shaped params', () => {
    const set = fromText(rule('deny', '{ params: [{ path: "**.CidrIp", cidrPrefixMax: 8 }] }', { def: 'allow' }));
    const p = (params: object) => input(inv({ perms: [['ec2:DescribeInstances']], access: W, params: params as Record<string, unknown> }));
    expect(decide(set, p({ IpPermissions: [{ IpRanges: [{ CidrIp: '10.0.0.0/16' }, { CidrIp: '0.0.0.0/0' }] }] })).decision).toBe('deny');
    expect(decide(set, p({ IpPermissions: [{ IpRanges: [{ CidrIp: '0.0.0.0/1' }] }] })).decision).toBe('deny');
    expect(decide(set, p({ IpPermissions: [{ IpRanges: [{ cidrip: '0.0.0.0/0' }] }] })).decision).toBe('deny');
    expect(decide(set, p({ IpPermissions: [{ IpRanges: [{ CidrIp: '10.0.0.0/16' }] }] })).decision).toBe('allow');
  });
  test('params: `**` reaches every value at any depth, top-level ones included; `A.**` everything under A', () => {
    const any = fromText(rule('deny', '{ params: [{ path: "**", equals: "x" }] }', { def: 'allow' }));
    const under = fromText(rule('deny', '{ params: [{ path: "A.**", equals: "x" }] }', { def: 'allow' }));
    const p = (params: object) => input(inv({ perms: [['s3:GetObject', ['arn:aws:s3:::b']]], access: W, params: params as Record<string, unknown> }));
    expect(decide(any, p({ A: 'x' })).decision).toBe('deny');
    expect(decide(any, p({ A: { B: [['y', 'x']] } })).decision).toBe('deny');
    expect(decide(any, p({ A: '{"B":{"C":"x"}}' })).decision).toBe('deny');
    expect(decide(any, p({ A: 'y' })).decision).toBe('allow');
    expect(decide(under, p({ A: { B: 'x' } })).decision).toBe('deny');
    expect(decide(under, p({ Z: { B: 'x' } })).decision).toBe('allow');
  });
  test('params: JSON documents in string parameters are searched', () => {
    const set = fromText(rule('deny', '{ params: [{ path: "**.Principal.AWS", equals: "*" }] }', { def: 'allow' }));
    const policy = JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: { AWS: ['arn:aws:iam::1:root', '*'] } }] });
    expect(decide(set, input(inv({ perms: [['s3:GetObject', ['arn:aws:s3:::b']]], access: W, params: { Policy: policy } }))).decision).toBe('deny');
  });
  test('params: restrictive rules match if ANY value matches, allow rules need ALL values (and at least one)', () => {
    const deny = fromText(rule('deny', '{ params: [{ path: "Items", in: [bad] }] }', { def: 'allow' }));
    const allow = fromText(rule('allow', '{ params: [{ path: "Items", in: [ok] }] }'));
    const p = (Items: unknown) => input(inv({ perms: [['s3:GetObject', ['arn:aws:s3:::b']]], access: W, params: Items === undefined ? {} : { Items } }));
    expect(decide(deny, p(['ok', 'bad'])).decision).toBe('deny');
    expect(decide(allow, p(['ok', 'bad'])).decision).toBe('deny');
    expect(decide(allow, p(['ok', 'ok'])).decision).toBe('allow');
    expect(decide(allow, p(undefined)).decision).toBe('deny');
  });
  test('params: exists, glob, contains, numbers', () => {
    const p = (params: Record<string, unknown>) => input(inv({ perms: [['s3:GetObject', ['arn:aws:s3:::b']]], access: W, params }));
    expect(decide(fromText(rule('deny', '{ params: [{ path: "Force", exists: true }] }', { def: 'allow' })), p({ Force: false })).decision).toBe('deny');
    expect(decide(fromText(rule('deny', '{ params: [{ path: "Force", exists: false }] }', { def: 'allow' })), p({ Force: false })).decision).toBe('allow');
    expect(decide(fromText(rule('deny', '{ params: [{ path: "Name", glob: ["prod-*"] }] }', { def: 'allow' })), p({ Name: 'PROD-db' })).decision).toBe('deny');
    expect(decide(fromText(rule('deny', '{ params: [{ path: "Doc", contains: "AllUsers" }] }', { def: 'allow' })), p({ Doc: 'uri=http://acs.amazonaws.com/groups/global/allusers' })).decision).toBe('deny');
    expect(decide(fromText(rule('approve', '{ params: [{ path: "RetentionInDays", lt: 7 }] }', { def: 'allow' })), p({ RetentionInDays: 1 })).decision).toBe('approve');
    expect(decide(fromText(rule('approve', '{ params: [{ path: "RetentionInDays", lt: 7 }] }', { def: 'allow' })), p({ RetentionInDays: 30 })).decision).toBe('allow');
  });
  test('globals conditions', () => {
    const set = fromText(rule('deny', '{ globals: [{ path: endpoint-url, exists: true }] }', { def: 'allow' }));
    expect(decide(set, input(inv({ perms: [['s3:ListAllMyBuckets']], access: W, globals: { 'endpoint-url': 'http://x' } }))).decision).toBe('deny');
    expect(decide(set, input(inv({ perms: [['s3:ListAllMyBuckets']], access: W, globals: { region: 'x' } }))).decision).toBe('allow');
  });
});

describe('caller and target', () => {
  const p = inv({ perms: [['s3:GetObject', ['arn:aws:s3:::b/k']]], access: W });
  test('groups match group membership only — a subject named like a group is not in it', () => {
    const set = fromText(rule('allow', '{ groups: [admins] }'));
    expect(decide(set, input(p, { subject: 'admins', groups: [] })).decision).toBe('deny');
    expect(decide(set, input(p, { subject: 'x', groups: ['admins'] })).decision).toBe('allow');
    expect(decide(set, input(p, { subject: 'x', groups: ['Admins'] })).decision).toBe('deny');
  });
  test('a deny on a subject cannot be dodged by case; an allow is exact', () => {
    const set = fromText(`version: 1
default: allow
rules:
  - { id: d, effect: deny, reason: r, match: { subjects: ['agent-*'] } }
`);
    expect(decide(set, input(p, { subject: 'AGENT-7', groups: [] })).decision).toBe('deny');
  });
  test('notGroups exempts only exact members for a deny', () => {
    const set = fromText(rule('deny', '{ notGroups: [sre] }', { def: 'allow' }));
    expect(decide(set, input(p, { subject: 'x', groups: ['sre'] })).decision).toBe('allow');
    expect(decide(set, input(p, { subject: 'x', groups: ['SRE'] })).decision).toBe('deny');
    expect(decide(set, input(p, { subject: 'sre', groups: [] })).decision).toBe('deny');
  });
  test('accounts, targets, regions', () => {
    const set = fromText(rule('deny', '{ accounts: ["999999999999"], targets: ["prod*"], regions: ["eu-*"] }', { def: 'allow' }));
    const t = { name: 'prod-eu', account: '999999999999' };
    expect(decide(set, input(inv({ perms: [['s3:GetObject', ['arn:aws:s3:::b']]], access: W, region: 'eu-west-1' }), agent, t)).decision).toBe('deny');
    expect(decide(set, input(inv({ perms: [['s3:GetObject', ['arn:aws:s3:::b']]], access: W, region: 'us-east-1' }), agent, t)).decision).toBe('allow');
    expect(decide(set, input(inv({ perms: [['s3:GetObject', ['arn:aws:s3:::b']]], access: W, region: 'eu-west-1' }), agent, devTarget)).decision).toBe('allow');
  });
  test('cross_account compares ARN accounts with the target account', () => {
    const set = fromText(rule('deny', '{ crossAccount: true }', { def: 'allow' }));
    const own = inv({ perms: [['secretsmanager:GetSecretValue', ['arn:aws:secretsmanager:us-east-1:111122223333:secret:x']]], access: {} });
    const other = inv({ perms: [['secretsmanager:GetSecretValue', ['arn:aws:secretsmanager:us-east-1:444455556666:secret:x']]], access: {} });
    expect(decide(set, input(own)).decision).toBe('allow');
    expect(decide(set, input(other)).decision).toBe('deny');
  });
});

describe('precedence and multi-action calls', () => {
  const policy = `version: 1
default: allow
rules:
  - { id: allow-all, effect: allow, reason: r, match: {} }
  - { id: approve-put, effect: approve, reason: r, approval: { groups: [a] }, match: { actions: ['s3:PutObject'] } }
  - { id: deny-delete, effect: deny, reason: r, match: { actions: ['s3:DeleteObject'] } }
`;
  const mv = inv({ perms: [['s3:GetObject', ['arn:aws:s3:::b/k']], ['s3:PutObject', ['arn:aws:s3:::b/k2']], ['s3:DeleteObject', ['arn:aws:s3:::b/k']]], access: W });
  test('deny beats approve beats allow, whatever the rule order', () => {
    const set = fromText(policy);
    expect(decide(set, input(mv))).toMatchObject({ decision: 'deny', rule: 'deny-delete', action: 's3:DeleteObject' });
    const cp = inv({ perms: [['s3:GetObject', ['arn:aws:s3:::b/k']], ['s3:PutObject', ['arn:aws:s3:::b/k2']]], access: W });
    expect(decide(set, input(cp))).toMatchObject({ decision: 'approve', rule: 'approve-put', approval: { groups: ['a'], count: 1 } });
  });
  test('allow only when every permission is allowed: one uncovered permission falls to the default', () => {
    const set = fromText(rule('allow', '{ actions: ["s3:GetObject"] }', { def: 'deny' }));
    const cp = inv({ perms: [['s3:GetObject', ['arn:aws:s3:::b/k']], ['s3:PutObject', ['arn:aws:s3:::b/k2']]], access: W });
    expect(decide(set, input(cp))).toMatchObject({ decision: 'deny', rule: null });
    const d = explainDecision(set, input(cp));
    expect(d.permissions.map((p) => [p.action, p.decision, p.rule])).toEqual([
      ['s3:GetObject', 'allow', 'r1'],
      ['s3:PutObject', 'deny', null],
    ]);
  });
  test('default approve carries its approval requirement', () => {
    const set = fromText(`version: 1
default: { effect: approve, approval: { groups: [leads], count: 2 } }
rules: []
`);
    expect(decide(set, input(getObj()))).toMatchObject({ decision: 'approve', rule: null, approval: { groups: ['leads'], count: 2 } });
  });
  test('several approve rules: the strictest combination (common groups, largest count, all requirements listed)', () => {
    const set = fromText(`version: 1
default: allow
rules:
  - { id: a1, effect: approve, reason: r, approval: { groups: [ops, sec], count: 1 }, match: { actions: ['s3:PutObject'] } }
  - { id: a2, effect: approve, reason: r, approval: { groups: [sec], count: 2 }, match: { actions: ['s3:*'] } }
  - { id: a3, effect: approve, reason: r, approval: { groups: [legal], count: 1 }, match: { actions: ['s3:DeleteObject'] } }
`);
    const put = inv({ perms: [['s3:PutObject', ['arn:aws:s3:::b/k']]], access: W });
    expect(decide(set, input(put)).approval).toEqual({ groups: ['sec'], count: 2, requirements: [{ groups: ['ops', 'sec'], count: 1 }, { groups: ['sec'], count: 2 }] });
    const d = decide(set, input(mv));
    expect(d.approval!.groups).toEqual([]); // no group is common to all: a naive consumer finds no approver
    expect(d.approval!.requirements).toHaveLength(3);
  });
  test('empty rule list: the default decides; no default: deny', () => {
    expect(decide(fromText('version: 1\nrules: []\n'), input(getObj()))).toMatchObject({ decision: 'deny', rule: null });
    expect(decide(fromText('version: 1\ndefault: allow\nrules: []\n'), input(getObj()))).toMatchObject({ decision: 'allow', rule: null });
  });
  test('empty match matches every call', () => {
    expect(decide(fromText(rule('deny', '{}', { def: 'allow' })), input(getObj())).rule).toBe('r1');
  });
  test('multiple files: all rules apply, the last default wins, ids must be unique', () => {
    const set = fromFiles({
      'a.yaml': 'version: 1\ndefault: allow\nrules:\n  - { id: d, effect: deny, reason: r, match: { actions: ["s3:PutObject"] } }\n',
      'b.yaml': 'version: 1\ndefault: deny\nrules:\n  - { id: g, effect: allow, reason: r, match: { actions: ["s3:GetObject"] } }\n',
    });
    expect(decide(set, input(getObj())).decision).toBe('allow');
    expect(decide(set, input(inv({ perms: [['s3:ListBucket', ['arn:aws:s3:::b']]], access: W }))).decision).toBe('deny');
    expect(() =>
      fromFiles({ 'a.yaml': rule('deny', '{}', { id: 'x' }), 'b.yaml': rule('allow', '{}', { id: 'X' }) }),
    ).toThrow(/b\.yaml:4:9: rules\[0\]\.id: duplicate rule id `X` \(first defined at a\.yaml:4\)/);
  });
});
