/**
 * Actions paired with THEIR resources (the broker's session policy is built from these pairs), curated
 * exceptions, s3 high-level commands and other customizations, risk signals.
 */
import { describe, expect, it } from 'vitest';
import { ACTION_EXCEPTIONS, S3_VERSION_ACTIONS } from '../../src/invocation/action-exceptions.js';
import { actionInfo } from '../../src/invocation/iam-catalog.js';
import { parseInvocation } from '../../src/invocation/parse.js';

const ctx = { account: '111122223333', region: 'us-east-1', cwd: '/w', env: { HOME: '/h' }, readFile: () => Buffer.from('x') };
const parse = (...argv: string[]) => parseInvocation(argv, ctx);
const perms = (...argv: string[]) => Object.fromEntries(parse(...argv).permissions.map((p) => [p.action, p.resources]));

describe('curated exception table', () => {
  it('names only actions that exist in the Service Authorization Reference', () => {
    for (const [op, actions] of Object.entries(ACTION_EXCEPTIONS)) for (const a of actions) expect(actionInfo(a), `${op} → ${a}`).toBeDefined();
    for (const a of Object.values(S3_VERSION_ACTIONS)) expect(actionInfo(a)).toBeDefined();
  });
  it('maps renamed operations (S3, Lambda, KMS, DynamoDB PartiQL, API Gateway verbs)', () => {
    expect(parse('s3api', 'head-object', '--bucket', 'b', '--key', 'k').actions).toEqual(['s3:GetObject']);
    expect(parse('s3api', 'get-object', '--bucket', 'b', '--key', 'k', '--version-id', 'v1', 'o').actions).toEqual(['s3:GetObjectVersion']);
    expect(parse('s3api', 'delete-public-access-block', '--bucket', 'b').actions).toEqual(['s3:PutBucketPublicAccessBlock']);
    expect(parse('lambda', 'invoke', '--function-name', 'f', 'out').actions).toEqual(['lambda:InvokeFunction']);
    expect(parse('kms', 're-encrypt', '--ciphertext-blob', 'fileb://x', '--destination-key-id', 'k').actions).toEqual(['kms:ReEncryptFrom', 'kms:ReEncryptTo']);
    expect(perms('dynamodb', 'execute-statement', '--statement', 'DELETE FROM "Orders" WHERE pk=1')).toEqual({
      'dynamodb:PartiQLDelete': ['arn:aws:dynamodb:us-east-1:111122223333:table/Orders'],
    });
    expect(perms('apigateway', 'delete-rest-api', '--rest-api-id', 'a1b2')).toEqual({ 'apigateway:DELETE': ['arn:aws:apigateway:us-east-1::/restapis/a1b2'] });
    expect(parse('sqs', 'send-message-batch', '--queue-url', 'https://sqs.us-east-1.amazonaws.com/111122223333/q', '--entries', 'Id=1,MessageBody=x').actions).toEqual(['sqs:SendMessage']);
  });
  it('adds iam:PassRole on the passed role only, and tag-on-create actions only with tags', () => {
    const p = perms('lambda', 'create-function', '--function-name', 'f', '--runtime', 'python3.12', '--role', 'arn:aws:iam::111122223333:role/exec', '--handler', 'h', '--code', 'S3Bucket=b,S3Key=k');
    expect(p['iam:PassRole']).toEqual(['arn:aws:iam::111122223333:role/exec']);
    expect(p['lambda:CreateFunction']).toEqual(['arn:aws:lambda:us-east-1:111122223333:function:f']);
    expect(parse('sts', 'assume-role', '--role-arn', 'arn:aws:iam::111122223333:role/x', '--role-session-name', 's').actions).toEqual(['sts:AssumeRole']);
    expect(parse('ec2', 'create-vpc', '--cidr-block', '10.0.0.0/16').actions).toEqual(['ec2:CreateVpc']);
    expect(parse('ec2', 'create-vpc', '--cidr-block', '10.0.0.0/16', '--tag-specifications', 'ResourceType=vpc,Tags=[{Key=a,Value=b}]').actions).toEqual(['ec2:CreateTags', 'ec2:CreateVpc']);
  });
  it('copy-object: GetObject on the source, PutObject on the destination — not the product', () => {
    expect(perms('s3api', 'copy-object', '--bucket', 'dst', '--key', 'k2', '--copy-source', 'src/k1')).toEqual({
      's3:GetObject': ['arn:aws:s3:::src/k1'],
      's3:PutObject': ['arn:aws:s3:::dst/k2'],
    });
  });
  it('operations without a known action are errors, never allowed', () => {
    expect(() => parse('neptunedata', 'execute-fast-reset', '--action', 'initiateDatabaseReset')).toThrow(/no IAM action is known/);
    expect(parse('keyspaces', 'list-keyspaces').actions).toEqual(['cassandra:Select']);
    expect(() => parse('applicationcostprofiler', 'list-report-definitions')).toThrow(/no IAM prefix/);
  });
});

describe('aws s3 high-level commands', () => {
  it('cp between buckets pairs each action with its own side', () => {
    expect(perms('s3', 'cp', 's3://a/k', 's3://b/k')).toEqual({ 's3:GetObject': ['arn:aws:s3:::a/k'], 's3:PutObject': ['arn:aws:s3:::b/k'] });
  });
  it('cp/mv/rm/sync/rb expand with their flags', () => {
    expect(perms('s3', 'cp', 'local.txt', 's3://b/dir/')).toEqual({ 's3:PutObject': ['arn:aws:s3:::b/dir/local.txt'] });
    expect(perms('s3', 'cp', 's3://b/k', 'here.txt')).toEqual({ 's3:GetObject': ['arn:aws:s3:::b/k'] });
    expect(perms('s3', 'mv', 's3://a/x', 's3://b/y')).toEqual({
      's3:DeleteObject': ['arn:aws:s3:::a/x'],
      's3:GetObject': ['arn:aws:s3:::a/x'],
      's3:PutObject': ['arn:aws:s3:::b/y'],
    });
    expect(perms('s3', 'rm', 's3://b/tmp/', '--recursive')).toEqual({ 's3:DeleteObject': ['arn:aws:s3:::b/tmp/*'], 's3:ListBucket': ['arn:aws:s3:::b'] });
    expect(perms('s3', 'sync', 's3://a/p/', 's3://b/q/', '--delete')).toEqual({
      's3:DeleteObject': ['arn:aws:s3:::b/q/*'],
      's3:GetObject': ['arn:aws:s3:::a/p/*'],
      's3:ListBucket': ['arn:aws:s3:::a', 'arn:aws:s3:::b'],
      's3:PutObject': ['arn:aws:s3:::b/q/*'],
    });
    expect(parse('s3', 'sync', 's3://a/p/', 's3://b/q/', '--delete').risks).toEqual(expect.arrayContaining(['destructive', 'bulk']));
    expect(perms('s3', 'rb', 's3://b', '--force')).toEqual({
      's3:DeleteBucket': ['arn:aws:s3:::b'],
      's3:DeleteObject': ['arn:aws:s3:::b/*'],
      's3:ListBucket': ['arn:aws:s3:::b'],
    });
    expect(parse('s3', 'rb', 's3://b').actions).toEqual(['s3:DeleteBucket']);
    expect(parse('s3', 'mb', 's3://b').actions).toEqual(['s3:CreateBucket']);
    expect(parse('s3', 'website', 's3://b', '--index-document', 'index.html').actions).toEqual(['s3:PutBucketWebsite']);
    expect(parse('s3', 'ls', 's3://b/p/').actions).toEqual(['s3:ListBucket']);
  });
  it('--acl public-read and AllUsers grants are internet exposure; presign mints a bearer URL', () => {
    expect(parse('s3', 'cp', 'f', 's3://b/k', '--acl', 'public-read').risks).toContain('internet_exposure');
    expect(parse('s3', 'cp', 'f', 's3://b/k', '--acl', 'private').risks).not.toContain('internet_exposure');
    expect(parse('s3', 'cp', 'f', 's3://b/k', '--grants', 'read=uri=http://acs.amazonaws.com/groups/global/AllUsers').risks).toContain('internet_exposure');
    const p = parse('s3', 'presign', 's3://b/k', '--expires-in', '60');
    expect(p.risks).toContain('credential_minting');
    expect(p.actions).toEqual(['s3:GetObject']);
  });
});

describe('other customizations', () => {
  it('wait runs the waiter operation', () => {
    const r = parse('ec2', 'wait', 'instance-running', '--instance-ids', 'i-1');
    expect(r.operation).toBe('DescribeInstances');
    expect(r.actions).toEqual(['ec2:DescribeInstances']);
    expect(parse('dynamodb', 'wait', 'table-exists', '--table-name', 'T').resources).toEqual(['arn:aws:dynamodb:us-east-1:111122223333:table/T']);
    expect(() => parse('ec2', 'wait', 'nope')).toThrow(/unknown waiter/);
  });
  it('credential helpers are credential minting', () => {
    expect(parse('ecr', 'get-login-password').risks).toContain('credential_minting');
    expect(parse('eks', 'get-token', '--cluster-name', 'c').risks).toContain('credential_minting');
    const t = parse('rds', 'generate-db-auth-token', '--hostname', 'h', '--port', '5432', '--username', 'app');
    expect(t.actions).toEqual(['rds-db:connect']);
    expect(t.risks).toContain('credential_minting');
  });
  it('eks update-kubeconfig describes the cluster (and assumes a role only with --assume-role-arn)', () => {
    const r = parse('eks', 'update-kubeconfig', '--name', 'prod', '--kubeconfig', '/tmp/kc');
    expect(r.permissions).toEqual([{ action: 'eks:DescribeCluster', resources: ['arn:aws:eks:us-east-1:111122223333:cluster/prod'], derived: true }]);
    expect(r.files).toEqual([{ path: '/tmp/kc', mode: 'write', argument: '--kubeconfig' }]);
    const a = parse('eks', 'update-kubeconfig', '--name', 'prod', '--assume-role-arn', 'arn:aws:iam::444455556666:role/eks');
    expect(a.actions).toEqual(['eks:DescribeCluster', 'sts:AssumeRole']);
    expect(a.risks).toEqual(expect.arrayContaining(['credential_minting', 'cross_account']));
  });
  it('unsupported customizations are refused', () => {
    expect(() => parse('deploy', 'register', '--instance-name', 'x')).toThrow(/not supported/);
  });
});

describe('risk signals', () => {
  it('flags exposure, IAM changes, destruction, secrets and cross-account targets', () => {
    expect(parse('ec2', 'authorize-security-group-ingress', '--group-id', 'sg-1', '--protocol', 'tcp', '--port', '22', '--cidr', '0.0.0.0/0').risks).toContain('internet_exposure');
    expect(parse('ec2', 'authorize-security-group-ingress', '--group-id', 'sg-1', '--ip-permissions', 'IpProtocol=tcp,FromPort=1,ToPort=2,Ipv6Ranges=[{CidrIpv6=::/0}]').risks).toContain('internet_exposure');
    expect(parse('s3api', 'put-bucket-policy', '--bucket', 'b', '--policy', '{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"}]}').risks).toEqual(expect.arrayContaining(['internet_exposure', 'iam_change']));
    expect(parse('s3api', 'put-public-access-block', '--bucket', 'b', '--public-access-block-configuration', 'BlockPublicAcls=false,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true').risks).toContain('internet_exposure');
    expect(parse('rds', 'modify-db-instance', '--db-instance-identifier', 'd', '--publicly-accessible').risks).toContain('internet_exposure');
    expect(parse('iam', 'create-user', '--user-name', 'u').risks).toContain('iam_change');
    expect(parse('ec2', 'terminate-instances', '--instance-ids', 'i-1').risks).toContain('destructive');
    expect(parse('s3api', 'put-bucket-lifecycle-configuration', '--bucket', 'b', '--lifecycle-configuration', '{"Rules":[{"ID":"x","Status":"Enabled","Filter":{"Prefix":""},"Expiration":{"Days":1}}]}').risks).toContain('destructive');
    expect(parse('s3api', 'put-bucket-versioning', '--bucket', 'b', '--versioning-configuration', 'Status=Suspended').risks).toContain('destructive');
    expect(parse('kms', 'schedule-key-deletion', '--key-id', 'k', '--pending-window-in-days', '7').risks).toContain('destructive');
    expect(parse('logs', 'put-retention-policy', '--log-group-name', 'g', '--retention-in-days', '1').risks).toContain('destructive');
    expect(parse('secretsmanager', 'get-secret-value', '--secret-id', 's').risks).toContain('secret_read');
    expect(parse('ssm', 'get-parameter', '--name', 'p').risks).not.toContain('secret_read');
    expect(parse('ssm', 'get-parameter', '--name', 'p', '--with-decryption').risks).toContain('secret_read');
    expect(parse('ssm', 'send-command', '--document-name', 'AWS-RunShellScript', '--instance-ids', 'i-1', '--parameters', 'commands=id').risks).toContain('remote_execution');
    expect(parse('secretsmanager', 'get-secret-value', '--secret-id', 'arn:aws:secretsmanager:eu-west-1:444455556666:secret:x-AbCdEf').risks).toContain('cross_account');
    expect(parse('sts', 'get-caller-identity').risks).toEqual(['read_only']);
    expect(parse('s3api', 'get-object', '--bucket', 'b', '--key', 'k', '--expected-bucket-owner', '444455556666', 'o').risks).toContain('cross_account');
    expect(parse('sqs', 'purge-queue', '--queue-url', 'https://sqs.eu-west-1.amazonaws.com/444455556666/q').resources).toEqual(['arn:aws:sqs:eu-west-1:444455556666:q']);
  });
  it('fills access levels from the Service Authorization Reference', () => {
    expect(parse('s3api', 'put-bucket-acl', '--bucket', 'b', '--acl', 'private').accessLevels).toEqual({ 's3:PutBucketAcl': 'Permissions management' });
    expect(parse('ec2', 'describe-instances').accessLevels).toEqual({ 'ec2:DescribeInstances': 'List' });
  });
});
