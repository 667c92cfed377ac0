/**
 * Property tests (fast-check): random argv built from real command/option names plus junk, random file
 * contents behind file:// and --cli-input-json. Never an exception other than GuardError('parse'); never an
 * API/customization result without actions unless the operation is permissionless; errors are one line and
 * name the token (or the part) at fault.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GuardError } from '../../src/errors.js';
import { parseInvocation } from '../../src/invocation/parse.js';

const COMMANDS = ['s3', 's3api', 'ec2', 'iam', 'sts', 'lambda', 'dynamodb', 'sqs', 'kms', 'ssm', 'configure', 'logs', 'help', 'myalias', 'apigateway', 'ecr'];
const SUBS = ['ls', 'cp', 'mv', 'rm', 'sync', 'rb', 'mb', 'presign', 'list-objects-v2', 'put-object', 'get-object', 'describe-instances', 'run-instances',
  'get-role', 'assume-role', 'invoke', 'get-item', 'execute-statement', 'send-message', 'decrypt', 'get-parameter', 'set', 'get', 'wait', 'instance-running',
  'help', 'get-login-password', 'delete-rest-api', 'authorize-security-group-ingress'];
const OPTS = ['--bucket', '--key', '--buck', '--b', '--p', '--prof', '--profile', '--endp', '--endpoint-url', '--region', '--reg', '--output', '--query',
  '--no-paginate', '--debug', '--cli-input-json', '--generate-cli-skeleton', '--recursive', '--delete', '--acl', '--instance-ids', '--dry-run', '--no-dry-run',
  '--role-name', '--statement', '--queue-url', '--message-body', '--function-name', '--key-id', '--name', '--with-decryption', '--group-id', '--cidr',
  '--ip-permissions', '--tags', '--c', '--no-', '--', '-x', '--version', '--body', '--rest-api-id', '--bucket=x', '--region=us-west-2'];
const VALUES = ['s3://b/k', 's3://b/', 'local.txt', 'file://in.json', 'fileb://in.bin', 'file://~/.aws/credentials', 'http://x/y', 'https://sqs.us-east-1.amazonaws.com/111122223333/q',
  'us-east-1', 'eu-west-1', 'i-0abc', 'sg-1', '0.0.0.0/0', 'public-read', '{"Bucket":"j"}', '[1,2]', '{bad', 'Key=a,Value=b', 'Key=a,Value@=file://in.json',
  'SELECT * FROM "T"', 'DROP TABLE x', '-5', '-x', '', ' ', 'help', 'arn:aws:iam::444455556666:role/x', 'alias/k', 'a=b=c', 'IpProtocol=tcp,IpRanges=[{CidrIp=0.0.0.0/0}]', '[{', 'x,y,z'];

const token = fc.oneof(
  fc.constantFrom(...COMMANDS),
  fc.constantFrom(...SUBS),
  fc.constantFrom(...OPTS),
  fc.constantFrom(...VALUES),
  fc.string({ maxLength: 12 }),
);
const argvArb = fc.oneof(
  fc.array(token, { maxLength: 10 }),
  fc.tuple(fc.constantFrom(...COMMANDS), fc.constantFrom(...SUBS), fc.array(token, { maxLength: 8 })).map(([c, s, r]) => [c, s, ...r]),
);

function checkOne(argv: string[], content: string): void {
  const ctx = {
    account: '111122223333',
    region: 'us-east-1',
    cwd: '/w',
    env: { HOME: '/h' },
    readFile: () => Buffer.from(content),
  };
  try {
    const r = parseInvocation(argv, ctx);
    if (r.kind === 'api' || r.kind === 'custom') {
      const permissionless = r.operation === 'GetCallerIdentity' || r.command === 'rds' || r.apiCalls.length === 0;
      if (!permissionless) expect(r.actions.length, argv.join(' ')).toBeGreaterThan(0);
    } else {
      expect(r.actions).toEqual([]);
    }
    expect(r.actions).toEqual([...new Set(r.actions)].sort());
    expect(r.resources).toEqual([...new Set(r.resources)].sort());
    // canonical argv carries no abbreviation and no "--"
    expect(r.canonicalArgv).not.toContain('--');
  } catch (e) {
    if (!(e instanceof GuardError)) throw new Error(`non-GuardError for ${JSON.stringify(argv)}: ${(e as Error).stack}`);
    expect(e.code).toBe('parse');
    expect(e.message).not.toMatch(/[\r\n]/);
    const idx = e.details.index;
    if (typeof idx === 'number') expect(e.message).toContain(`token ${idx}`);
  }
}

describe('parseInvocation properties', () => {
  it('random argv: only GuardError(parse), consistent results', () => {
    fc.assert(fc.property(argvArb, fc.string({ maxLength: 40 }), (argv, content) => checkOne(argv, content)), { numRuns: 3000 });
  });
  it('random file contents behind file:// and --cli-input-json never crash', () => {
    const content = fc.oneof(fc.string({ maxLength: 60 }), fc.json({ maxDepth: 3 }), fc.constant('{"Bucket":123}'), fc.constant('{"Bucket":{"a":1}}'), fc.constant('null'));
    fc.assert(
      fc.property(content, (c) => {
        checkOne(['s3api', 'list-objects-v2', '--cli-input-json', 'file://in.json'], c);
        checkOne(['ec2', 'authorize-security-group-ingress', '--cli-input-json', 'file://in.json'], c);
        checkOne(['iam', 'put-role-policy', '--role-name', 'r', '--policy-name', 'p', '--policy-document', 'file://in.json'], c);
        checkOne(['dynamodb', 'execute-statement', '--cli-input-json', 'file://in.json'], c);
        checkOne(['ec2', 'run-instances', '--cli-input-json', 'file://in.json'], c);
        checkOne(['dynamodb', 'transact-write-items', '--transact-items', 'file://in.json'], c);
        checkOne(['ssm', 'put-parameter', '--name', 'n', '--value', 'file://in.json', '--tags', 'Key=a,Value@=file://in.json'], c);
      }),
      { numRuns: 500 },
    );
  });
  it('random shorthand never crashes', () => {
    const sh = fc.stringMatching(/^[A-Za-z=,\[\]{}@:'"\\ .\/0-9-]{0,40}$/);
    fc.assert(
      fc.property(sh, (s) => {
        checkOne(['ec2', 'describe-instances', '--filters', s], '');
        checkOne(['ec2', 'authorize-security-group-ingress', '--group-id', 'sg-1', '--ip-permissions', s], '');
        checkOne(['s3api', 'put-bucket-tagging', '--bucket', 'b', '--tagging', s], '');
      }),
      { numRuns: 1000 },
    );
  });
});
