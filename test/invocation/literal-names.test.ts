import { describe, expect, it } from 'vitest';
import { GuardError } from '../../src/errors.js';
import { parseInvocation } from '../../src/invocation/parse.js';
import { iamLiteral } from '../../src/invocation/iam-literal.js';
import { buildSessionPolicy } from '../../src/broker/session-policy.js';

// Found in review: names the caller chooses were put into resource ARNs raw, and IAM reads `*`/`?` there as
// wildcards — a GetObject on key `*` was granted on the whole bucket. Each case tries to widen a grant.
const ctx = { account: '123456789012', region: 'us-east-1', cwd: '/w', env: { HOME: '/h' }, readFile: () => Buffer.from('{}') };
const perms = (argv: string[]) => Object.fromEntries(parseInvocation(argv, ctx).permissions.map((p) => [p.action, p.resources]));
const parseErr = (argv: string[]) => {
  try {
    parseInvocation(argv, ctx);
  } catch (e) {
    return e instanceof GuardError ? e : undefined;
  }
  return undefined;
};

describe('caller-chosen names are literal in resource ARNs', () => {
  it('escapes *, ? and $ with IAM special-character variables', () => {
    expect(iamLiteral('a*b?c$d')).toBe('a${*}b${?}c${$}d');
  });
  it('a key named * is that key, not the whole bucket (API and aws s3 forms)', () => {
    expect(perms(['s3api', 'get-object', '--bucket', 'b', '--key', '*', 'out'])['s3:GetObject']).toEqual(['arn:aws:s3:::b/${*}']);
    expect(perms(['s3', 'cp', '/etc/hosts', 's3://b/*'])['s3:PutObject']).toEqual(['arn:aws:s3:::b/${*}']);
    expect(perms(['s3', 'rm', 's3://b/?'])['s3:DeleteObject']).toEqual(['arn:aws:s3:::b/${?}']);
  });
  it('a recursive operation keeps its own prefix wildcard', () => {
    expect(perms(['s3', 'rm', 's3://b/p*/', '--recursive'])['s3:DeleteObject']).toEqual(['arn:aws:s3:::b/p${*}/*']);
  });
  it('names in other services too', () => {
    expect(perms(['dynamodb', 'get-item', '--table-name', '*', '--key', '{}'])['dynamodb:GetItem']).toEqual([
      'arn:aws:dynamodb:us-east-1:123456789012:table/${*}',
    ]);
    expect(perms(['lambda', 'invoke', '--function-name', 'f*', 'o'])['lambda:InvokeFunction']!.join()).not.toMatch(/f\*(?!\})/);
    expect(perms(['ssm', 'get-parameter', '--name', '/app/${aws:username}'])['ssm:GetParameter']).toEqual([
      'arn:aws:ssm:us-east-1:123456789012:parameter/app/${$}{aws:username}',
    ]);
  });
  it('a wildcard or variable inside an ARN parameter is refused (AWS never takes one as an identifier)', () => {
    for (const argv of [
      ['secretsmanager', 'get-secret-value', '--secret-id', 'arn:aws:secretsmanager:us-east-1:*:secret:prod-db'],
      ['sns', 'publish', '--topic-arn', 'arn:aws:sns:us-east-1:*:t', '--message', 'm'],
      ['ssm', 'get-parameter', '--name', 'arn:aws:ssm:us-east-1:123456789012:parameter/*'],
    ]) {
      expect(parseErr(argv)?.code, argv.join(' ')).toBe('parse');
    }
  });
  it('an empty identifier is refused instead of becoming `*`', () => {
    expect(parseErr(['s3api', 'get-object', '--bucket', 'b', '--key', '', 'out'])?.code).toBe('parse');
    expect(parseErr(['dynamodb', 'scan', '--table-name', ''])?.code).toBe('parse');
  });
  it('an access point in another account is a cross-account call, and its statement is pinned to the target account', () => {
    const inv = parseInvocation(['s3', 'cp', 's3://victim/db.sql', 's3://arn:aws:s3:us-east-1:999999999999:accesspoint/drop/db.sql'], ctx);
    expect(inv.risks).toContain('cross_account');
    const put = inv.permissions.find((p) => p.action === 's3:PutObject')!;
    const policy = JSON.parse(buildSessionPolicy([put], { resourceAccounts: ['123456789012'], invocation: null })) as { Statement: { Condition?: unknown }[] };
    expect(policy.Statement[0]!.Condition).toEqual({ StringEquals: { 'aws:ResourceAccount': '123456789012' } });
  });
});
