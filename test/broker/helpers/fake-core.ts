import { GuardError } from '../../../src/errors.js';
import type { InvocationContext, ParsedInvocation, Permission } from '../../../src/invocation/types.js';
import type { Decision, DecisionInput } from '../../../src/policy/types.js';

/**
 * Hand-built stand-ins for parseInvocation and decide, so the broker's own behaviour (HTTP, auth, STS, storage)
 * is tested independently of the parser's and the policy engine's tables. They cover a handful of fixed
 * invocations only; the broker with the real modules is tested end to end in test/e2e/main-path.test.ts.
 */
function inv(argv: string[], ctx: InvocationContext, service: string, operation: string, permissions: Permission[]): ParsedInvocation {
  const actions = [...new Set(permissions.map((p) => p.action))].sort();
  return {
    argv,
    canonicalArgv: argv,
    kind: 'api',
    command: argv[0]!,
    subcommand: argv[1] ?? null,
    service,
    operation,
    apiCalls: [operation],
    params: {},
    globals: {},
    region: ctx.region,
    permissions,
    actions,
    resources: [...new Set(permissions.flatMap((p) => p.resources).filter((r) => r !== '*'))].sort(),
    accessLevels: {},
    risks: [],
    files: [],
    notes: [],
  };
}

export function fakeParse(argv: string[], ctx: InvocationContext): ParsedInvocation {
  const key = argv.join(' ');
  const R = ctx.region;
  const A = ctx.account;
  if (key === 'sts get-caller-identity') return inv(argv, ctx, 'sts', 'GetCallerIdentity', []);
  if (key.startsWith('s3api get-object --bucket ')) {
    const b = argv[3]!;
    const k = argv[5]!;
    return inv(argv, ctx, 's3', 'GetObject', [{ action: 's3:GetObject', resources: [`arn:aws:s3:::${b}/${k}`], derived: true }]);
  }
  if (key.startsWith('s3api delete-bucket --bucket ')) {
    return inv(argv, ctx, 's3', 'DeleteBucket', [{ action: 's3:DeleteBucket', resources: [`arn:aws:s3:::${argv[3]}`], derived: true }]);
  }
  if (key.startsWith('dynamodb describe-table --table-name ')) {
    return inv(argv, ctx, 'dynamodb', 'DescribeTable', [
      { action: 'dynamodb:DescribeTable', resources: [`arn:aws:dynamodb:${R}:${A}:table/${argv[3]}`], derived: true },
    ]);
  }
  if (key === 'ec2 describe-instances') {
    return inv(argv, ctx, 'ec2', 'DescribeInstances', [{ action: 'ec2:DescribeInstances', resources: ['*'], derived: false }]);
  }
  if (key.startsWith('iam delete-role --role-name ')) {
    return inv(argv, ctx, 'iam', 'DeleteRole', [{ action: 'iam:DeleteRole', resources: [`arn:aws:iam::${A}:role/${argv[3]}`], derived: true }]);
  }
  if (key.startsWith('huge ')) {
    // Many distinct resources whose policy cannot fit in 2,048 characters.
    const perms = Array.from({ length: 60 }, (_, i) => ({ action: `s3:GetObject`, resources: [`arn:aws:s3:::bucket-${i}/some/long/key/name-${i}`], derived: true }));
    return inv(argv, ctx, 's3', 'GetObject', perms);
  }
  if (key === 'boom') throw new Error('parser bug: secret internals at /srv/guard/parse.ts:42');
  throw new GuardError('parse', `token 0: unknown command ${JSON.stringify(argv[0])}`);
}

export function fakeDecide({ invocation, caller }: DecisionInput): Decision {
  if (invocation.operation === 'DeleteBucket') return { decision: 'deny', rule: 'no-bucket-deletion', reason: 'buckets are never deleted through the guard' };
  if (invocation.service === 'iam') {
    return { decision: 'approve', rule: 'iam-needs-approval', reason: 'IAM changes need a second person', approval: { groups: ['approvers'], count: 1 } };
  }
  if (caller.groups.includes('readonly') && invocation.operation === 'GetObject') {
    return { decision: 'deny', rule: 'readonly-no-data', reason: 'read-only users may not read objects' };
  }
  return { decision: 'allow', rule: 'default-allow', reason: 'allowed for developers' };
}
