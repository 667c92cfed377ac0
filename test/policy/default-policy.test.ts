import { describe, expect, test } from 'vitest';
import { decide } from '../../src/policy/decide.js';
import { loadPolicies } from '../../src/policy/load.js';
import { input, inv } from './fixtures.js';

// policies/default.yaml must hold even when the parser's risk classifier misses something: these invocations
// carry NO risk signals, so only the rules on actions, parameters and globals can catch them.
const set = loadPolicies(['policies/default.yaml']);
const d = (perms: [string, string[]?, boolean?][], access: Record<string, string>, extra: Parameters<typeof inv>[0] = {}) =>
  decide(set, input(inv({ perms, access: access as never, risks: [], ...extra })));

describe('default.yaml without risk signals', () => {
  test('credential minting by action', () => {
    for (const a of ['sts:AssumeRole', 'sts:AssumeRoleWithWebIdentity', 'sts:GetSessionToken', 'iam:CreateAccessKey', 'ecr:GetAuthorizationToken']) {
      expect(d([[a, ['*'], true]], { [a]: 'Read' }).decision, a).toBe('deny');
    }
  });
  test('IAM writes by access level, PassRole approved instead', () => {
    expect(d([['iam:AttachRolePolicy', ['arn:aws:iam::111122223333:role/r']]], { 'iam:AttachRolePolicy': 'Permissions management' }).decision).toBe('deny');
    expect(d([['iam:TagRole', ['arn:aws:iam::111122223333:role/r']]], { 'iam:TagRole': 'Tagging' }).decision).toBe('deny');
    expect(d([['iam:GetRole', ['arn:aws:iam::111122223333:role/r']]], { 'iam:GetRole': 'Read' }).decision).toBe('allow');
    expect(d([['iam:PassRole', ['arn:aws:iam::111122223333:role/r']]], { 'iam:PassRole': 'Write' })).toMatchObject({ decision: 'approve', rule: 'approve-pass-role' });
  });
  test('internet exposure by parameters', () => {
    const ingress = [['ec2:AuthorizeSecurityGroupIngress', ['arn:aws:ec2:us-east-1:111122223333:security-group/sg-1']]] as [string, string[]][];
    const w = { 'ec2:AuthorizeSecurityGroupIngress': 'Write' };
    expect(d(ingress, w, { params: { IpPermissions: [{ IpRanges: [{ CidrIp: '0.0.0.0/0' }] }] } }).rule).toBe('deny-open-ingress-ipv4');
    expect(d(ingress, w, { params: { IpPermissions: [{ Ipv6Ranges: [{ CidrIpv6: '::/0' }] }] } }).rule).toBe('deny-open-ingress-ipv6');
    expect(d(ingress, w, { params: { IpPermissions: [{ IpRanges: [{ CidrIp: '10.1.0.0/16' }] }] } }).decision).toBe('approve');
    const acl = [['s3:PutBucketAcl', ['arn:aws:s3:::b']]] as [string, string[]][];
    expect(d(acl, { 's3:PutBucketAcl': 'Permissions management' }, { params: { Bucket: 'b', ACL: 'PUBLIC-READ' } }).rule).toBe('deny-public-acl');
    expect(d(acl, { 's3:PutBucketAcl': 'Permissions management' }, { params: { Bucket: 'b', GrantRead: 'uri=http://acs.amazonaws.com/groups/global/AllUsers' } }).rule).toBe('deny-public-grant');
  });
  test('guard bypass by global options', () => {
    const ls: [string, string[], boolean][] = [['s3:ListAllMyBuckets', ['*'], true]];
    for (const [k, v] of [['endpoint-url', 'http://x'], ['profile', 'p'], ['no-sign-request', true], ['ca-bundle', '/tmp/ca.pem'], ['no-verify-ssl', true]] as const) {
      expect(d(ls, { 's3:ListAllMyBuckets': 'List' }, { globals: { [k]: v } }).decision, k).toBe('deny');
    }
  });
  test('secret reads by action', () => {
    expect(d([['secretsmanager:GetSecretValue', ['arn:aws:secretsmanager:us-east-1:111122223333:secret:x-??????']]], { 'secretsmanager:GetSecretValue': 'Read' })).toMatchObject({ decision: 'approve', rule: 'approve-secret-read-actions' });
    expect(d([['kms:Decrypt', ['*'], false]], { 'kms:Decrypt': 'Write' }, { command: 'kms', subcommand: 'decrypt' }).rule).toBe('approve-kms-plaintext');
  });
  test('anything else that writes waits for an approver; on prod for two', () => {
    const put = [['sqs:SendMessage', ['arn:aws:sqs:us-east-1:111122223333:q']]] as [string, string[]][];
    expect(d(put, { 'sqs:SendMessage': 'Write' })).toMatchObject({ decision: 'approve', rule: null, approval: { groups: ['approvers'], count: 1 } });
    expect(decide(set, input(inv({ perms: put, access: { 'sqs:SendMessage': 'Write' } }), undefined, { name: 'prod', account: '111122223333' }))).toMatchObject({ decision: 'approve', approval: { groups: ['approvers'], count: 2 } });
  });
  test('local commands are denied, help is allowed', () => {
    expect(decide(set, input(inv({ kind: 'local', command: 'configure', subcommand: 'get' }))).decision).toBe('deny');
    expect(decide(set, input(inv({ kind: 'no_api_call', command: 'ec2', subcommand: 'help' }))).decision).toBe('allow');
  });
});
