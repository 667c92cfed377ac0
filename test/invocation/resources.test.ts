/**
 * Resources as tight as IAM allows, and fail closed where they cannot be read (docs/aws-cli-parsing.md §5.2,
 * §5.3). Every case is a real argv through parseInvocation (the generated CLI tables and the Service
 * Authorization Reference data in data/), asserting the exact permissions.
 */
import { describe, expect, it } from 'vitest';
import { GuardError } from '../../src/errors.js';
import { parseInvocation } from '../../src/invocation/parse.js';
import type { InvocationContext } from '../../src/invocation/types.js';

const ACCOUNT = '111122223333';
const ctx: InvocationContext = { account: ACCOUNT, region: 'us-east-1', cwd: '/w', env: { HOME: '/h' }, readFile: () => Buffer.from('{}') };

/** `action resource,resource` per permission, in the parser's order. */
const perms = (argv: string[], context = ctx) => parseInvocation(argv, context).permissions.map((p) => `${p.action} ${p.resources.join(',')}`);

function refusal(argv: string[]): GuardError {
  try {
    parseInvocation(argv, ctx);
  } catch (e) {
    if (e instanceof GuardError) return e;
    throw e;
  }
  throw new Error(`accepted: ${argv.join(' ')}`);
}

describe('SQS queue URLs: the queue is the path, whatever the host', () => {
  const send = (url: string) => perms(['sqs', 'send-message', '--queue-url', url, '--message-body', 'x']);

  it('reads the region from the standard, dual-stack, legacy and VPC endpoint hosts', () => {
    expect(send('https://sqs.eu-west-1.amazonaws.com/111122223333/jobs')).toEqual(['sqs:SendMessage arn:aws:sqs:eu-west-1:111122223333:jobs']);
    expect(send('https://sqs.eu-west-1.api.aws/111122223333/jobs')).toEqual(['sqs:SendMessage arn:aws:sqs:eu-west-1:111122223333:jobs']);
    expect(send('https://ap-south-1.queue.amazonaws.com/111122223333/jobs')).toEqual(['sqs:SendMessage arn:aws:sqs:ap-south-1:111122223333:jobs']);
    expect(send('https://queue.amazonaws.com/111122223333/jobs')).toEqual(['sqs:SendMessage arn:aws:sqs:us-east-1:111122223333:jobs']);
    expect(send('https://sqs.cn-north-1.amazonaws.com.cn/111122223333/jobs')).toEqual(['sqs:SendMessage arn:aws-cn:sqs:cn-north-1:111122223333:jobs']);
    expect(send('https://vpce-0a1b2c3d-abcd.sqs.us-west-2.vpce.amazonaws.com/111122223333/jobs.fifo')).toEqual([
      'sqs:SendMessage arn:aws:sqs:us-west-2:111122223333:jobs.fifo',
    ]);
  });

  it("takes the call's region for a host that names none (moto, a proxy)", () => {
    expect(send('http://localhost:5000/111122223333/jobs')).toEqual(['sqs:SendMessage arn:aws:sqs:us-east-1:111122223333:jobs']);
    expect(perms(['--region', 'eu-central-1', 'sqs', 'delete-queue', '--queue-url', 'http://127.0.0.1:4566/111122223333/q'])).toEqual([
      'sqs:DeleteQueue arn:aws:sqs:eu-central-1:111122223333:q',
    ]);
  });

  it('an unknown host is still scoped to its queue, and another account in the path is cross-account', () => {
    const r = parseInvocation(['sqs', 'receive-message', '--queue-url', 'https://queues.example.net/444455556666/inbox'], ctx);
    expect(r.resources).toEqual(['arn:aws:sqs:us-east-1:444455556666:inbox']);
    expect(r.risks).toContain('cross_account');
  });

  it('a URL whose path does not name an account and a queue is refused, never `*`', () => {
    for (const url of ['https://sqs.us-east-1.amazonaws.com/jobs', 'https://sqs.us-east-1.amazonaws.com/', 'jobs', 'file:///tmp/q', 'https://sqs.us-east-1.amazonaws.com/1111/jobs']) {
      const e = refusal(['sqs', 'send-message', '--queue-url', url, '--message-body', 'x']);
      expect(e.code, url).toBe('parse');
      expect(e.details).toMatchObject({ parameter: 'QueueUrl', reason: 'unreadable_identifier' });
      expect(e.message).not.toMatch(/\n/);
    }
  });

  it('a wildcard in the queue name or the owner account is refused', () => {
    expect(refusal(['sqs', 'purge-queue', '--queue-url', 'https://sqs.us-east-1.amazonaws.com/111122223333/*']).details).toMatchObject({ reason: 'wildcard_identifier' });
    expect(refusal(['sqs', 'get-queue-url', '--queue-name', 'q', '--queue-owner-aws-account-id', '*']).details).toMatchObject({
      parameter: 'QueueOwnerAWSAccountId',
      reason: 'wildcard_identifier',
    });
  });
});

describe('wildcards as identifiers are refused with a reason', () => {
  it("'*' as an ECR registry id", () => {
    for (const argv of [
      ['ecr', 'describe-repositories', '--registry-id', '*'],
      ['ecr', 'batch-get-image', '--registry-id', '*', '--repository-name', 'app', '--image-ids', 'imageTag=latest'],
      ['ecr', 'put-image', '--registry-id', '1111222233*', '--repository-name', 'app', '--image-manifest', '{}'],
    ]) {
      const e = refusal(argv);
      expect(e.code).toBe('parse');
      expect(e.details).toMatchObject({ parameter: 'registryId', reason: 'wildcard_identifier' });
      expect(e.message).toContain('12-digit AWS account id');
    }
    expect(refusal(['ecr', 'describe-repositories', '--registry-id', 'mine']).details).toMatchObject({ reason: 'unreadable_identifier' });
  });

  it('ARNs with a wildcard account, region or name', () => {
    for (const argv of [
      ['sns', 'publish', '--topic-arn', 'arn:aws:sns:us-east-1:*:alerts', '--message', 'x'],
      ['sns', 'publish', '--topic-arn', 'arn:aws:sns:*:111122223333:alerts', '--message', 'x'],
      ['lambda', 'invoke', '--function-name', 'arn:aws:lambda:us-east-1:111122223333:function:*', 'out.json'],
      ['secretsmanager', 'delete-secret', '--secret-id', 'arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/?'],
      ['ecs', 'update-service', '--cluster', 'arn:aws:ecs:us-east-1:111122223333:cluster/*', '--service', 's', '--desired-count', '1'],
      ['apigateway', 'tag-resource', '--resource-arn', 'arn:aws:apigateway:us-east-1::/restapis/*', '--tags', 'a=b'],
    ]) {
      const e = refusal(argv);
      expect(e.code, argv.join(' ')).toBe('parse');
      expect(e.details.reason, argv.join(' ')).toBe('wildcard_identifier');
    }
  });

  it('a role passed to a service with a wildcard (PassRole would cover every matching role)', () => {
    for (const [argv, member] of [
      [['lambda', 'create-function', '--function-name', 'f', '--runtime', 'python3.12', '--handler', 'h', '--role', 'arn:aws:iam::111122223333:role/*', '--code', 'S3Bucket=b,S3Key=k'], 'Role'],
      [['ecs', 'run-task', '--task-definition', 'td', '--overrides', '{"taskRoleArn":"arn:aws:iam::111122223333:role/adm?n"}'], 'taskRoleArn'],
      [['ec2', 'create-flow-logs', '--resource-type', 'VPC', '--resource-ids', 'vpc-1', '--traffic-type', 'ALL', '--log-group-name', 'g', '--deliver-logs-permission-arn', 'arn:aws:iam::111122223333:role/${aws:username}'], 'DeliverLogsPermissionArn'],
    ] as const) {
      expect(refusal([...argv]).details, argv.join(' ')).toMatchObject({ parameter: member, reason: 'wildcard_identifier' });
    }
  });

  it('an ARN the session policy could not hold (malformed partition or service, no resource) is refused, not a 500 later', () => {
    for (const arn of ['arn:AWS:lambda:us-east-1:111122223333:function:f', 'arn:aws:Lambda:us-east-1:111122223333:function:f', 'arn:garbage']) {
      const e = refusal(['lambda', 'get-function', '--function-name', arn]);
      expect(e.code, arn).toBe('parse');
      expect(e.details.reason, arn).toBe('unreadable_identifier');
    }
  });

  it("an ARN in the shape of SAR's own template is read even where that template has no account (MediaConnect offerings)", () => {
    // SAR: Offering = arn:${Partition}:mediaconnect:${Region}:offering:${OfferingId} — `offering` stands in the account
    // field. Such an ARN is granted exactly as written; one with an account is read as given too.
    expect(perms(['mediaconnect', 'describe-offering', '--offering-arn', 'arn:aws:mediaconnect:us-east-1:offering:o-1'])).toEqual([
      'mediaconnect:DescribeOffering arn:aws:mediaconnect:us-east-1:offering:o-1',
    ]);
    expect(perms(['mediaconnect', 'describe-offering', '--offering-arn', `arn:aws:mediaconnect:us-east-1:${ACCOUNT}:offering:o-1`])).toEqual([
      `mediaconnect:DescribeOffering arn:aws:mediaconnect:us-east-1:${ACCOUNT}:offering:o-1`,
    ]);
    // The word is accepted only where that service's template has it: not another word, not in another service, no
    // wildcard in place of the offering.
    for (const argv of [
      ['mediaconnect', 'describe-offering', '--offering-arn', 'arn:aws:mediaconnect:us-east-1:flow:o-1'],
      ['lambda', 'get-function', '--function-name', 'arn:aws:lambda:us-east-1:offering:function:f'],
    ]) {
      expect(refusal(argv).details.reason, argv.join(' ')).toBe('unreadable_identifier');
    }
    expect(refusal(['mediaconnect', 'describe-offering', '--offering-arn', 'arn:aws:mediaconnect:us-east-1:offering:*']).details.reason).toBe('wildcard_identifier');
  });

  it('an expected bucket owner that is not an account id', () => {
    expect(refusal(['s3api', 'get-object', '--bucket', 'b', '--key', 'k', '--expected-bucket-owner', '*', 'out']).details).toMatchObject({
      parameter: 'ExpectedBucketOwner',
      reason: 'wildcard_identifier',
    });
  });

  it('a name holding `*` stays that literal name (IAM ${*}), not a wildcard', () => {
    expect(perms(['sqs', 'get-queue-url', '--queue-name', 'q*'])).toEqual(['sqs:GetQueueUrl arn:aws:sqs:us-east-1:111122223333:q${*}']);
  });
});

describe('a write whose resource the call does not name is "any resource", never a silent `*`', () => {
  it('gets the required types in the account and region, underived, and the any_resource risk', () => {
    const r = parseInvocation(['elbv2', 'modify-load-balancer-attributes', '--load-balancer-arn', 'my-lb', '--attributes', 'Key=idle_timeout.timeout_seconds,Value=60'], ctx);
    expect(r.permissions).toEqual([
      { action: 'elasticloadbalancing:ModifyLoadBalancerAttributes', resources: [`arn:aws:elasticloadbalancing:us-east-1:${ACCOUNT}:loadbalancer/*`], derived: false },
    ]);
    expect(r.risks).toContain('any_resource');
  });

  it('keeps `*` for reads and for actions without resource types, with no any_resource', () => {
    const list = parseInvocation(['ecs', 'list-services'], ctx);
    expect(list.permissions).toEqual([{ action: 'ecs:ListServices', resources: ['*'], derived: false }]);
    expect(list.risks).not.toContain('any_resource');
    const create = parseInvocation(['kms', 'create-key'], ctx);
    expect(create.permissions).toEqual([{ action: 'kms:CreateKey', resources: ['*'], derived: false }]);
    expect(create.risks).not.toContain('any_resource');
  });

  it('a named resource carries no any_resource', () => {
    expect(parseInvocation(['sqs', 'delete-queue', '--queue-url', 'https://sqs.us-east-1.amazonaws.com/111122223333/q'], ctx).risks).not.toContain('any_resource');
  });
});

describe('measured defects (issue 8, "Resources as tight as IAM allows")', () => {
  it('apigatewayv2 resources are named without the /v2 request prefix', () => {
    expect(perms(['apigatewayv2', 'get-api', '--api-id', 'a1b2c3'])).toEqual(['apigateway:GET arn:aws:apigateway:us-east-1::/apis/a1b2c3']);
    expect(perms(['apigatewayv2', 'delete-stage', '--api-id', 'a1b2c3', '--stage-name', 'prod'])).toEqual(['apigateway:DELETE arn:aws:apigateway:us-east-1::/apis/a1b2c3/stages/prod']);
    expect(perms(['apigatewayv2', 'get-domain-names'])).toEqual(['apigateway:GET arn:aws:apigateway:us-east-1::/domainnames']);
    // SAR: Tags = /tags/${UrlEncodedResourceARN}
    expect(perms(['apigatewayv2', 'tag-resource', '--resource-arn', 'arn:aws:apigateway:us-east-1::/apis/a1b2c3', '--tags', 'team=x'])).toEqual([
      'apigateway:POST arn:aws:apigateway:us-east-1::/tags/arn%3Aaws%3Aapigateway%3Aus-east-1%3A%3A%2Fapis%2Fa1b2c3',
    ]);
  });

  it('athena notebooks are authorized on their workgroup, not a workgroup named like the notebook', () => {
    expect(perms(['athena', 'create-notebook', '--work-group', 'analysts', '--name', 'q3-report'])).toEqual([
      'athena:CreateNotebook arn:aws:athena:us-east-1:111122223333:workgroup/analysts',
    ]);
  });

  it('rds proxies are db-proxy ARNs, which carry the proxy id, so a name narrows to the account’s proxies', () => {
    expect(perms(['rds', 'delete-db-proxy', '--db-proxy-name', 'app-proxy'])).toEqual(['rds:DeleteDBProxy arn:aws:rds:us-east-1:111122223333:db-proxy:*']);
    expect(perms(['rds', 'describe-db-proxies', '--db-proxy-name', 'arn:aws:rds:us-east-1:111122223333:db-proxy:prx-0123456789abcdef0'])).toEqual([
      'rds:DescribeDBProxies arn:aws:rds:us-east-1:111122223333:db-proxy:prx-0123456789abcdef0',
    ]);
  });

  it('ssm send-command --targets grants the targeted instances (all of them for tag targets)', () => {
    expect(perms(['ssm', 'send-command', '--document-name', 'AWS-RunShellScript', '--targets', 'Key=InstanceIds,Values=i-0123456789abcdef0,mi-0123456789abcdef0', '--parameters', 'commands=uptime'])).toEqual([
      'ssm:SendCommand arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0,arn:aws:ssm:us-east-1:111122223333:managed-instance/mi-0123456789abcdef0,arn:aws:ssm:us-east-1::document/AWS-RunShellScript',
    ]);
    expect(perms(['ssm', 'send-command', '--document-name', 'AWS-RunShellScript', '--targets', 'Key=tag:Env,Values=dev', '--parameters', 'commands=uptime'])).toEqual([
      'ssm:SendCommand arn:aws:ec2:us-east-1:111122223333:instance/*,arn:aws:ssm:us-east-1:111122223333:managed-instance/*,arn:aws:ssm:us-east-1::document/AWS-RunShellScript',
    ]);
  });

  it('iam add-role-to-instance-profile passes the role', () => {
    expect(perms(['iam', 'add-role-to-instance-profile', '--instance-profile-name', 'web', '--role-name', 'web-role'])).toEqual([
      'iam:AddRoleToInstanceProfile arn:aws:iam::111122223333:instance-profile/web',
      'iam:PassRole arn:aws:iam::111122223333:role/web-role',
    ]);
  });

  it('kms replicate-key also needs kms:CreateKey', () => {
    expect(perms(['kms', 'replicate-key', '--key-id', 'mrk-1234abcd12ab34cd56ef1234567890ab', '--replica-region', 'eu-west-1'])).toEqual([
      'kms:CreateKey *',
      'kms:ReplicateKey arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab',
    ]);
  });

  it('ec2 create-flow-logs to S3 needs logs:CreateLogDelivery, and passes the delivery role', () => {
    expect(
      perms(['ec2', 'create-flow-logs', '--resource-type', 'VPC', '--resource-ids', 'vpc-0123456789abcdef0', '--traffic-type', 'ALL', '--log-destination-type', 's3', '--log-destination', 'arn:aws:s3:::flow-logs']),
    ).toEqual(['ec2:CreateFlowLogs arn:aws:ec2:us-east-1:111122223333:vpc-flow-log/*,arn:aws:ec2:us-east-1:111122223333:vpc/vpc-0123456789abcdef0', 'logs:CreateLogDelivery *']);
    expect(
      perms([
        'ec2', 'create-flow-logs', '--resource-type', 'Subnet', '--resource-ids', 'subnet-0123456789abcdef0', '--traffic-type', 'REJECT',
        '--log-group-name', 'flows', '--deliver-logs-permission-arn', 'arn:aws:iam::111122223333:role/flow-logs',
      ]),
    ).toEqual(['ec2:CreateFlowLogs arn:aws:ec2:us-east-1:111122223333:subnet/subnet-0123456789abcdef0,arn:aws:ec2:us-east-1:111122223333:vpc-flow-log/*', 'iam:PassRole arn:aws:iam::111122223333:role/flow-logs']);
  });

  it('ecs: task definitions, services under their cluster (default when none), and PassRole for the task roles', () => {
    expect(perms(['ecs', 'run-task', '--cluster', 'web', '--task-definition', 'api:7'])).toEqual([
      'ecs:RunTask arn:aws:ecs:us-east-1:111122223333:task-definition/api:7',
      'iam:PassRole arn:aws:iam::111122223333:role/*',
    ]);
    expect(perms(['ecs', 'start-task', '--task-definition', 'api', '--container-instances', 'ci-1'])).toEqual([
      'ecs:StartTask arn:aws:ecs:us-east-1:111122223333:task-definition/api:*',
      'iam:PassRole arn:aws:iam::111122223333:role/*',
    ]);
    expect(perms(['ecs', 'update-service', '--service', 'api', '--desired-count', '2'])).toEqual(['ecs:UpdateService arn:aws:ecs:us-east-1:111122223333:service/default/api']);
    expect(perms(['ecs', 'describe-services', '--cluster', 'arn:aws:ecs:us-east-1:111122223333:cluster/web', '--services', 'api', 'worker'])).toEqual([
      'ecs:DescribeServices arn:aws:ecs:us-east-1:111122223333:service/web/api,arn:aws:ecs:us-east-1:111122223333:service/web/worker',
    ]);
    expect(perms(['ecs', 'register-task-definition', '--family', 'api', '--container-definitions', '[]', '--task-role-arn', 'arn:aws:iam::111122223333:role/api-task'])).toEqual([
      'ecs:RegisterTaskDefinition arn:aws:ecs:us-east-1:111122223333:task-definition/api:*',
      'iam:PassRole arn:aws:iam::111122223333:role/api-task',
    ]);
  });

  it('current commands refused before: budgets, cloudfront, glue', () => {
    expect(perms(['budgets', 'describe-budget-notifications-for-account', '--account-id', ACCOUNT])).toEqual(['budgets:ViewBudget arn:aws:budgets::111122223333:budget/*']);
    expect(perms(['cloudfront', 'create-distribution-with-tags', '--distribution-config-with-tags', '{}'])).toEqual(['cloudfront:CreateDistribution *', 'cloudfront:TagResource *']);
    expect(perms(['glue', 'get-unfiltered-table-metadata', '--catalog-id', ACCOUNT, '--database-name', 'sales', '--name', 'orders', '--supported-permission-types', 'COLUMN_PERMISSION'])).toEqual([
      'glue:GetTable arn:aws:glue:us-east-1:111122223333:catalog,arn:aws:glue:us-east-1:111122223333:database/sales,arn:aws:glue:us-east-1:111122223333:table/sales/orders',
    ]);
    expect(parseInvocation(['glue', 'get-unfiltered-partitions-metadata', '--catalog-id', ACCOUNT, '--database-name', 'sales', '--table-name', 'orders', '--supported-permission-types', 'COLUMN_PERMISSION'], ctx).actions).toEqual(['glue:GetPartitions']);
  });

  it('generic filling: --name goes to the resource the call does not otherwise name', () => {
    expect(perms(['glue', 'delete-table', '--database-name', 'sales', '--name', 'orders'])).toEqual([
      'glue:DeleteTable arn:aws:glue:us-east-1:111122223333:catalog,arn:aws:glue:us-east-1:111122223333:database/sales,arn:aws:glue:us-east-1:111122223333:table/sales/orders',
    ]);
    expect(perms(['eks', 'describe-cluster', '--name', 'prod'])).toEqual(['eks:DescribeCluster arn:aws:eks:us-east-1:111122223333:cluster/prod']);
    // SAR lists only delivery-destination for DeleteDeliverySource: --name is the source, not a destination's name.
    const r = parseInvocation(['logs', 'delete-delivery-source', '--name', 'src'], ctx);
    expect(r.permissions).toEqual([{ action: 'logs:DeleteDeliverySource', resources: ['arn:aws:logs:us-east-1:111122223333:delivery-destination:*'], derived: false }]);
    expect(r.risks).toContain('any_resource');
  });

  it('eventbridge rules on the default bus, on a named bus, and every bus PutEvents entries name', () => {
    expect(perms(['events', 'put-rule', '--name', 'nightly', '--schedule-expression', 'rate(1 day)'])).toEqual(['events:PutRule arn:aws:events:us-east-1:111122223333:rule/nightly']);
    expect(perms(['events', 'disable-rule', '--name', 'r', '--event-bus-name', 'orders'])).toEqual(['events:DisableRule arn:aws:events:us-east-1:111122223333:rule/orders/r']);
    expect(perms(['events', 'put-events', '--entries', '[{"Source":"a","DetailType":"b","Detail":"{}"},{"Source":"a","DetailType":"b","Detail":"{}","EventBusName":"orders"}]'])).toEqual([
      'events:PutEvents arn:aws:events:us-east-1:111122223333:event-bus/default,arn:aws:events:us-east-1:111122223333:event-bus/orders',
    ]);
  });

  it('every required resource type the call names: the function and its code-signing config', () => {
    expect(perms(['lambda', 'put-function-code-signing-config', '--function-name', 'api', '--code-signing-config-arn', 'arn:aws:lambda:us-east-1:111122223333:code-signing-config:csc-0123456789abcdef0'])).toEqual([
      'lambda:PutFunctionCodeSigningConfig arn:aws:lambda:us-east-1:111122223333:code-signing-config:csc-0123456789abcdef0,arn:aws:lambda:us-east-1:111122223333:function:api',
    ]);
  });

  it('list members name one resource each; ids a service handler does not read are filled from templates', () => {
    expect(perms(['ec2', 'delete-vpc-endpoints', '--vpc-endpoint-ids', 'vpce-0a', 'vpce-0b'])).toEqual([
      'ec2:DeleteVpcEndpoints arn:aws:ec2:us-east-1:111122223333:vpc-endpoint/vpce-0a,arn:aws:ec2:us-east-1:111122223333:vpc-endpoint/vpce-0b',
    ]);
  });

  it('an empty identifier is refused before any template could turn it into a wildcard', () => {
    expect(refusal(['s3api', 'get-object', '--bucket', 'b', '--key', '', 'out']).details).toMatchObject({ parameter: 'Key' });
    expect(refusal(['events', 'delete-rule', '--name', '']).details).toMatchObject({ parameter: 'Name' });
  });

  it('an identifier missing from the request becomes the narrowest pattern, not `*`', () => {
    // autoScalingGroup:${GroupId}:autoScalingGroupName/${GroupFriendlyName}: the group id is not in the call.
    expect(perms(['autoscaling', 'set-desired-capacity', '--auto-scaling-group-name', 'web', '--desired-capacity', '3'])).toEqual([
      'autoscaling:SetDesiredCapacity arn:aws:autoscaling:us-east-1:111122223333:autoScalingGroup:*:autoScalingGroupName/web',
    ]);
    const r = parseInvocation(['autoscaling', 'set-desired-capacity', '--auto-scaling-group-name', 'web', '--desired-capacity', '3'], ctx);
    expect(r.permissions[0]!.derived).toBe(true);
    expect(r.risks).not.toContain('any_resource');
  });
});

describe('the `*` gap found by the generated corpus (test/invocation/coverage.test.ts), one class per case', () => {
  it('a read whose action has required resource types but names none gets their patterns, not `*`, and no any_resource', () => {
    // athena:GetQueryExecution is evaluated on the query's workgroup (SAR: workgroup*), which the call does not name.
    const r = parseInvocation(['athena', 'get-query-execution', '--query-execution-id', 'q-1'], ctx);
    expect(r.permissions).toEqual([{ action: 'athena:GetQueryExecution', resources: ['arn:aws:athena:us-east-1:111122223333:workgroup/*'], derived: false }]);
    expect(r.risks).not.toContain('any_resource');
    // An action without any resource type still needs `*` (IAM requires it).
    expect(perms(['ec2', 'describe-instances'])).toEqual(['ec2:DescribeInstances *']);
    // A write without its resource keeps the pattern and the any_resource risk, as before.
    expect(parseInvocation(['athena', 'stop-query-execution', '--query-execution-id', 'q-1'], ctx).risks).toContain('any_resource');
  });

  it('a bare `--id` fills `${DistributionId}` though another member (`--distribution-config`) starts with the type name', () => {
    expect(perms(['cloudfront', 'update-distribution', '--id', 'E2QWRUHEXAMPLE', '--distribution-config', '{}', '--if-match', 'E1'])).toEqual([
      'cloudfront:UpdateDistribution arn:aws:cloudfront::111122223333:distribution/E2QWRUHEXAMPLE',
    ]);
  });

  it('an `…Identifier` member fills an `${…Id}` variable', () => {
    expect(perms(['glue', 'delete-integration', '--integration-identifier', 'int-1'])).toEqual(['glue:DeleteIntegration arn:aws:glue:us-east-1:111122223333:integration:int-1']);
  });

  it("a member named by the end of the resource type's name fills the template's id (`--window-id` → maintenancewindow/${ResourceId})", () => {
    expect(perms(['ssm', 'get-maintenance-window', '--window-id', 'mw-0c50858d01EXAMPLE'])).toEqual([
      'ssm:GetMaintenanceWindow arn:aws:ssm:us-east-1:111122223333:maintenancewindow/mw-0c50858d01EXAMPLE',
    ]);
    expect(perms(['ssm', 'get-patch-baseline', '--baseline-id', 'pb-0c10e65780EXAMPLE'])).toEqual(['ssm:GetPatchBaseline arn:aws:ssm:us-east-1:111122223333:patchbaseline/pb-0c10e65780EXAMPLE']);
    // Not the other way round: a member about something more specific (`--source-snapshot-id`) is no snapshot id
    // of the call's own resource.
    expect(perms(['ec2', 'copy-snapshot', '--source-snapshot-id', 'snap-1', '--source-region', 'us-west-2'])).toEqual(['ec2:CopySnapshot arn:aws:ec2:us-east-1::snapshot/*']);
  });

  it('a path-like id after the type\'s `/` keeps one slash (`servicesetting/ssm/…`)', () => {
    expect(perms(['ssm', 'get-service-setting', '--setting-id', '/ssm/parameter-store/high-throughput-enabled'])).toEqual([
      'ssm:GetServiceSetting arn:aws:ssm:us-east-1:111122223333:servicesetting/ssm/parameter-store/high-throughput-enabled',
    ]);
  });

  it('API Gateway operations SAR names by operation (portals, routing rules) use that action on the resource ARN', () => {
    expect(perms(['apigatewayv2', 'get-portal', '--portal-id', 'p-1'])).toEqual(['apigateway:GetPortal arn:aws:apigateway:us-east-1:111122223333:/portals/p-1']);
    // Routes SAR does not name stay on the HTTP verb and the request path.
    expect(perms(['apigatewayv2', 'get-api', '--api-id', 'a1'])).toEqual(['apigateway:GET arn:aws:apigateway:us-east-1::/apis/a1']);
  });
});

describe('RDS resources the API names differently from SAR', () => {
  it('security groups, cluster endpoints, event subscriptions, and global clusters (no region in their ARN)', () => {
    expect(perms(['rds', 'delete-db-security-group', '--db-security-group-name', 'legacy'])).toEqual(['rds:DeleteDBSecurityGroup arn:aws:rds:us-east-1:111122223333:secgrp:legacy']);
    expect(perms(['rds', 'delete-db-cluster-endpoint', '--db-cluster-endpoint-identifier', 'reader-1'])).toEqual(['rds:DeleteDBClusterEndpoint arn:aws:rds:us-east-1:111122223333:cluster-endpoint:reader-1']);
    expect(perms(['rds', 'delete-event-subscription', '--subscription-name', 'alerts'])).toEqual(['rds:DeleteEventSubscription arn:aws:rds:us-east-1:111122223333:es:alerts']);
    expect(perms(['rds', 'delete-global-cluster', '--global-cluster-identifier', 'orders'])).toEqual(['rds:DeleteGlobalCluster arn:aws:rds::111122223333:global-cluster:orders']);
  });
});

describe('IAM names with a path, SSM documents named `Name`', () => {
  it('policies, server certificates and virtual MFA devices are named by name (and path)', () => {
    expect(perms(['iam', 'create-policy', '--policy-name', 'ci', '--policy-document', '{}'])).toEqual(['iam:CreatePolicy arn:aws:iam::111122223333:policy/ci']);
    expect(perms(['iam', 'create-policy', '--policy-name', 'ci', '--path', '/team/', '--policy-document', '{}'])).toEqual(['iam:CreatePolicy arn:aws:iam::111122223333:policy/team/ci']);
    expect(perms(['iam', 'get-server-certificate', '--server-certificate-name', 'www'])).toEqual(['iam:GetServerCertificate arn:aws:iam::111122223333:server-certificate/www']);
    expect(perms(['iam', 'create-virtual-mfa-device', '--virtual-mfa-device-name', 'alice', '--outfile', 'qr.png', '--bootstrap-method', 'QRCodePNG'])[0]).toBe(
      'iam:CreateVirtualMFADevice arn:aws:iam::111122223333:mfa/alice',
    );
    // A path that is not `/…/` is not spliced into the ARN.
    expect(perms(['iam', 'create-policy', '--policy-name', 'ci', '--path', 'team', '--policy-document', '{}'])).toEqual(['iam:CreatePolicy arn:aws:iam::111122223333:policy/ci']);
  });

  it('ssm: `--name` is the document where the action is about documents, never where it is about parameters', () => {
    expect(perms(['ssm', 'create-association', '--name', 'AWS-RunPatchBaseline'])).toEqual(['ssm:CreateAssociation arn:aws:ssm:us-east-1::document/AWS-RunPatchBaseline']);
    expect(perms(['ssm', 'get-calendar-state', '--calendar-names', 'freeze', 'holidays'])).toEqual([
      'ssm:GetCalendarState arn:aws:ssm:us-east-1:111122223333:document/freeze,arn:aws:ssm:us-east-1:111122223333:document/holidays',
    ]);
    expect(perms(['ssm', 'get-parameter', '--name', '/app/db'])).toEqual(['ssm:GetParameter arn:aws:ssm:us-east-1:111122223333:parameter/app/db']);
  });
});
