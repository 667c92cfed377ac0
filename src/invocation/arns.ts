/**
 * Resource ARNs from identifying parameters (docs/aws-cli-parsing.md §5). Account and region come from the
 * context; an account or region written in an ARN or URL parameter overrides them (and marks the call
 * cross-account). Where nothing can be derived the caller gets `*` with derived=false, or an account-scoped
 * wildcard where no narrower one is knowable (kms key/* behind an alias).
 */
import { GuardError } from '../errors.js';
import { actionResourceTypes, arnTemplate, requiredResourceTypes } from './iam-catalog.js';

export interface ArnContext {
  partition: string;
  region: string;
  account: string;
  /** Accounts seen in parameters that differ from the context account. */
  foreignAccounts: Set<string>;
}

/** Partition from region (docs/aws-cli-parsing.md §5.1). */
export function partitionOf(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  if (region.startsWith('us-isob-')) return 'aws-iso-b';
  if (region.startsWith('us-isof-')) return 'aws-iso-f';
  if (region.startsWith('us-iso-')) return 'aws-iso';
  if (region.startsWith('eu-isoe-')) return 'aws-iso-e';
  if (region.startsWith('eusc-')) return 'aws-eusc';
  return 'aws';
}

// The account field accepts anything but `:` so that a wildcard account (escaped `${*}`) is recognised as an ARN —
// and refused by given() — instead of falling through to an underived `*`.
const ARN_RE = /^arn:([\w-]+):([\w-]+):([\w-]*):([^:]*):(.+)$/;

export function parseArn(value: unknown): { partition: string; service: string; region: string; account: string; resource: string } | undefined {
  if (typeof value !== 'string') return undefined;
  const match = ARN_RE.exec(value);
  if (!match) return undefined;
  return { partition: match[1]!, service: match[2]!, region: match[3]!, account: match[4] ?? '', resource: match[5]! };
}

/** Records an account named in the call that is not the target account: the call is cross-account. */
function noteAccount(ctx: ArnContext, account: string) {
  if (/^\d{12}$/.test(account) && account !== ctx.account) ctx.foreignAccounts.add(account);
}

/**
 * An ARN given as a parameter value: used as-is, its account recorded. AWS APIs never take a wildcard or a policy
 * variable as an identifier; the caller's `*`, `?` and `$` arrive escaped (`${*}`, iam-literal.ts), so an ARN
 * holding one is refused rather than granted in every account (`arn:aws:secretsmanager:us-east-1:*:secret:x`).
 */
function given(ctx: ArnContext, arn: string): string {
  if (arn.includes('${')) {
    throw new GuardError('parse', `${unescaped(arn)}: an ARN parameter cannot contain wildcards or policy variables`, { details: { reason: 'wildcard_identifier' } });
  }
  const parsed = parseArn(arn);
  if (parsed) noteAccount(ctx, parsed.account);
  return arn;
}

/** A value as the caller wrote it (iam-literal.ts escapes `*`, `?` and `$` as `${*}`…), for messages. */
export function unescaped(value: string): string {
  return value.replace(/\$\{(.)\}/g, '$1');
}

/**
 * An identifier the deriver cannot read, or one holding a wildcard: refused with a reason (a 400 `unparseable`
 * on the broker, recorded like any other refusal) rather than left on `*` (docs/aws-cli-parsing.md §5.3).
 */
export function unreadable(member: string, value: string, expected: string): GuardError {
  const wildcard = /\$\{[*?$]\}/.test(value);
  return new GuardError(
    'parse',
    `${member}: ${JSON.stringify(unescaped(value))} ${wildcard ? 'holds a wildcard, which no AWS API takes as an identifier' : 'cannot be read as an identifier'}; expected ${expected}`,
    { details: { parameter: member, reason: wildcard ? 'wildcard_identifier' : 'unreadable_identifier' } },
  );
}

/**
 * A member naming the account a resource lives in (ECR `registryId`, SQS `QueueOwnerAWSAccountId`, S3
 * `ExpectedBucketOwner`): exactly 12 digits (AWS General Reference, "AWS account identifiers"). `*` would
 * otherwise land in the ARN's account field and grant, or break, every account's resource.
 */
function accountMember(member: string, value: string): string {
  if (!/^\d{12}$/.test(value)) throw unreadable(member, value, 'a 12-digit AWS account id');
  return value;
}

/** The value when it is a non-empty string: an empty identifier names nothing. */
const nonEmptyString = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);
/** Non-empty strings of a list member, or the member itself when it is one. */
const nonEmptyStrings = (value: unknown): string[] => {
  if (Array.isArray(value)) return value.filter((element): element is string => typeof element === 'string' && element !== '');
  const single = nonEmptyString(value);
  return single ? [single] : [];
};

/** API parameters by member name (`Bucket`, `Key`), as decoded from the argv. */
type ApiParams = Record<string, unknown>;

function s3Resources(action: string, params: ApiParams, ctx: ArnContext): string[] {
  const types = actionResourceTypes(action);
  const bucket = nonEmptyString(params.Bucket);
  // A bucket owner named in the call that is not the target account: a cross-account call.
  for (const member of ['ExpectedBucketOwner', 'ExpectedSourceBucketOwner']) {
    const owner = nonEmptyString(params[member]);
    if (owner) noteAccount(ctx, accountMember(member, owner));
  }
  if (!bucket) return [];
  if (parseArn(bucket)) return [given(ctx, bucket)];
  const arns: string[] = [];
  if (types.includes('object') || types.includes('accesspointobject')) {
    const key = nonEmptyString(params.Key);
    if (key) arns.push(`arn:${ctx.partition}:s3:::${bucket}/${key}`);
    const deleted = (params.Delete as ApiParams | undefined)?.Objects;
    if (Array.isArray(deleted)) {
      for (const object of deleted) {
        const deletedKey = nonEmptyString((object as ApiParams | undefined)?.Key);
        if (deletedKey) arns.push(`arn:${ctx.partition}:s3:::${bucket}/${deletedKey}`);
      }
    }
    if (arns.length) return arns;
  }
  if (types.includes('bucket')) return [`arn:${ctx.partition}:s3:::${bucket}`];
  return arns;
}

/** A function named by name, `ACCOUNT:function:NAME` or ARN (Lambda API reference, FunctionName). */
function lambdaFunctionArn(ctx: ArnContext, functionName: string, qualifier?: string): string {
  if (functionName.startsWith('arn:')) return given(ctx, functionName);
  const partial = /^(\d{12}):function:(.+)$/.exec(functionName);
  let account = ctx.account;
  let name = functionName;
  if (partial) {
    account = partial[1]!;
    name = partial[2]!;
    noteAccount(ctx, account);
  }
  return `arn:${ctx.partition}:lambda:${ctx.region}:${account}:function:${name}${qualifier ? `:${qualifier}` : ''}`;
}

function lambdaResources(action: string, params: ApiParams, ctx: ArnContext): string[] {
  const types = actionResourceTypes(action);
  const functionName = nonEmptyString(params.FunctionName);
  if (functionName && types.includes('function')) return [lambdaFunctionArn(ctx, functionName, nonEmptyString(params.Qualifier))];
  const arn = nonEmptyString(params.Arn);
  if (arn && parseArn(arn)) return [given(ctx, arn)];
  const layerName = nonEmptyString(params.LayerName);
  if (layerName) {
    if (layerName.startsWith('arn:')) return [given(ctx, layerName)];
    const version = params.VersionNumber;
    return [`arn:${ctx.partition}:lambda:${ctx.region}:${ctx.account}:layer:${layerName}${version !== undefined && types.includes('layerVersion') ? `:${version}` : ''}`];
  }
  return [];
}

function iamResources(action: string, params: ApiParams, ctx: ArnContext): string[] {
  const types = new Set(actionResourceTypes(action));
  const arns: string[] = [];
  const base = `arn:${ctx.partition}:iam::${ctx.account}:`;
  const named: [type: string, member: string][] = [
    ['role', 'RoleName'],
    ['user', 'UserName'],
    ['group', 'GroupName'],
    ['instance-profile', 'InstanceProfileName'],
  ];
  for (const [type, member] of named) {
    const name = nonEmptyString(params[member]);
    if (types.has(type) && name) arns.push(`${base}${type}/${name}`);
  }
  // Named with a path (`--path /team/`, "IAM identifiers": arn:aws:iam::ACCOUNT:policy/team/NAME); `/` when none.
  const path = nonEmptyString(params.Path);
  const withPath = (name: string) => `${path && /^\/(.*\/)?$/.test(path) ? path : '/'}${name}`;
  const pathNamed: [type: string, member: string][] = [
    ['policy', 'PolicyName'],
    ['server-certificate', 'ServerCertificateName'],
    ['mfa', 'VirtualMFADeviceName'],
  ];
  for (const [type, member] of pathNamed) {
    const name = nonEmptyString(params[member]);
    if (types.has(type) && name && !nonEmptyString(params.PolicyArn)) arns.push(`${base}${type}${withPath(name)}`);
  }
  const policyArn = nonEmptyString(params.PolicyArn);
  if (types.has('policy') && policyArn) arns.push(given(ctx, policyArn));
  for (const member of ['OpenIDConnectProviderArn', 'SAMLProviderArn', 'ServerCertificateArn']) {
    const arn = nonEmptyString(params[member]);
    if (arn) arns.push(given(ctx, arn));
  }
  const serialNumber = nonEmptyString(params.SerialNumber);
  // A virtual MFA device's serial number is its ARN; a hardware device's (`GAHT12345678`) names no ARN.
  if (types.has('mfa') && serialNumber && parseArn(serialNumber)) arns.push(given(ctx, serialNumber));
  return arns;
}

const EC2_ID_PARAMS: [string, string[], boolean][] = [
  // resource type, parameter members, ARN carries the account
  ['instance', ['InstanceId', 'InstanceIds'], true],
  ['security-group', ['GroupId', 'GroupIds'], true],
  ['volume', ['VolumeId', 'VolumeIds'], true],
  ['snapshot', ['SnapshotId', 'SnapshotIds'], false],
  ['image', ['ImageId', 'ImageIds'], false],
  ['vpc', ['VpcId', 'VpcIds'], true],
  ['subnet', ['SubnetId', 'SubnetIds'], true],
  ['network-interface', ['NetworkInterfaceId', 'NetworkInterfaceIds'], true],
  ['key-pair', ['KeyName'], true],
  ['launch-template', ['LaunchTemplateId'], true],
  ['elastic-ip', ['AllocationId'], true],
  ['internet-gateway', ['InternetGatewayId'], true],
  ['route-table', ['RouteTableId'], true],
  ['natgateway', ['NatGatewayId'], true],
];

// `ec2 create-flow-logs --resource-ids` names VPCs, subnets, network interfaces or transit gateway (attachments)
// by id; the id's prefix says which (EC2 API Reference, CreateFlowLogs ResourceIds).
const EC2_ID_PREFIXES: [prefix: string, type: string][] = [
  ['vpc-', 'vpc'],
  ['subnet-', 'subnet'],
  ['eni-', 'network-interface'],
  ['tgw-attach-', 'transit-gateway-attachment'],
  ['tgw-', 'transit-gateway'],
];

function ec2Resources(action: string, params: ApiParams, ctx: ArnContext): string[] {
  const types = new Set(actionResourceTypes(action));
  const arns: string[] = [];
  for (const id of nonEmptyStrings(params.ResourceIds)) {
    const type = EC2_ID_PREFIXES.find(([prefix]) => id.startsWith(prefix))?.[1];
    if (type && types.has(type)) arns.push(`arn:${ctx.partition}:ec2:${ctx.region}:${ctx.account}:${type}/${id}`);
  }
  for (const [type, members, withAccount] of EC2_ID_PARAMS) {
    if (!types.has(type)) continue;
    for (const member of members)
      for (const id of nonEmptyStrings(params[member])) arns.push(`arn:${ctx.partition}:ec2:${ctx.region}:${withAccount ? ctx.account : ''}:${type}/${id}`);
  }
  return arns;
}

const RDS_ID_PARAMS: [string, string][] = [
  ['db', 'DBInstanceIdentifier'],
  ['cluster', 'DBClusterIdentifier'],
  ['snapshot', 'DBSnapshotIdentifier'],
  ['cluster-snapshot', 'DBClusterSnapshotIdentifier'],
  ['pg', 'DBParameterGroupName'],
  ['cluster-pg', 'DBClusterParameterGroupName'],
  ['subgrp', 'DBSubnetGroupName'],
  ['og', 'OptionGroupName'],
  // SAR: secgrp:${SecurityGroupName}, cluster-endpoint:${DbClusterEndpoint}, es:${SubscriptionName} (event
  // subscriptions); the API names them DBSecurityGroupName, DBClusterEndpointIdentifier, SubscriptionName.
  ['secgrp', 'DBSecurityGroupName'],
  ['cluster-endpoint', 'DBClusterEndpointIdentifier'],
  ['es', 'SubscriptionName'],
  // Aurora global databases span regions: their ARN has none (SAR `arn:${Partition}:rds::${Account}:global-cluster:…`).
  ['global-cluster', 'GlobalClusterIdentifier'],
];

// RDS Proxy ARNs carry the proxy's resource id, not its name (`arn:aws:rds:REGION:ACCOUNT:db-proxy:prx-0123…`,
// SAR resource types `proxy` = `db-proxy:${DbProxyId}`, `proxy-endpoint`, `target-group`; Amazon RDS User Guide,
// "Amazon RDS Proxy"): a name given in the call narrows the grant to that kind of resource in the account.
const RDS_PROXY_PARAMS: [type: string, arnType: string, member: string][] = [
  ['proxy', 'db-proxy', 'DBProxyName'],
  ['proxy-endpoint', 'db-proxy-endpoint', 'DBProxyEndpointName'],
  ['target-group', 'target-group', 'TargetGroupName'],
];

function rdsResources(action: string, params: ApiParams, ctx: ArnContext): string[] {
  const types = new Set(actionResourceTypes(action));
  const arns: string[] = [];
  for (const [type, member] of RDS_ID_PARAMS) {
    const id = nonEmptyString(params[member]);
    if (!id || !types.has(type)) continue;
    const region = type === 'global-cluster' ? '' : ctx.region;
    arns.push(id.startsWith('arn:') ? given(ctx, id) : `arn:${ctx.partition}:rds:${region}:${ctx.account}:${type}:${id}`);
  }
  for (const [type, arnType, member] of RDS_PROXY_PARAMS) {
    const id = nonEmptyString(params[member]);
    if (!id || !types.has(type)) continue;
    arns.push(id.startsWith('arn:') ? given(ctx, id) : `arn:${ctx.partition}:rds:${ctx.region}:${ctx.account}:${arnType}:*`);
  }
  const resourceName = nonEmptyString(params.ResourceName);
  if (resourceName && parseArn(resourceName)) arns.push(given(ctx, resourceName));
  return arns;
}

function secretsmanagerResources(action: string, params: ApiParams, ctx: ArnContext): string[] {
  if (!actionResourceTypes(action).includes('Secret')) return [];
  const secret = nonEmptyString(params.SecretId) ?? nonEmptyString(params.Name);
  if (!secret) return [];
  // Secret ARNs end in a 6-character random suffix the caller does not know from a name.
  return [secret.startsWith('arn:') ? given(ctx, secret) : `arn:${ctx.partition}:secretsmanager:${ctx.region}:${ctx.account}:secret:${secret}-??????`];
}

function ssmResources(action: string, params: ApiParams, ctx: ArnContext): string[] {
  const types = new Set(actionResourceTypes(action));
  const arns: string[] = [];
  const parameterArn = (name: string) =>
    name.startsWith('arn:') ? given(ctx, name) : `arn:${ctx.partition}:ssm:${ctx.region}:${ctx.account}:parameter/${name.replace(/^\/+/, '')}`;
  if (types.has('parameter')) {
    for (const name of [...nonEmptyStrings(params.Name), ...nonEmptyStrings(params.Names)]) arns.push(parameterArn(name));
    const path = nonEmptyString(params.Path);
    if (path) arns.push(parameterArn(path.replace(/\/+$/, '') || '/'));
  }
  const documentName = nonEmptyString(params.DocumentName);
  // Where the action is about documents and not parameters, `Name` is the document (SSM API Reference:
  // CreateAssociation, UpdateDocumentMetadata `Name`; GetCalendarState `CalendarNames` are change-calendar documents).
  const aboutDocuments = types.has('document') && !types.has('parameter');
  const documentNames = [...nonEmptyStrings(documentName), ...(aboutDocuments && !documentName ? [...nonEmptyStrings(params.Name), ...nonEmptyStrings(params.CalendarNames)] : [])];
  if (types.has('document')) {
    for (const document of documentNames) {
      // AWS-owned documents (AWS-*) live in no account (docs/aws-cli-parsing.md §5.2).
      const owner = /^(AWS|Amazon)/.test(document) ? '' : ctx.account;
      arns.push(document.startsWith('arn:') ? given(ctx, document) : `arn:${ctx.partition}:ssm:${ctx.region}:${owner}:document/${document}`);
    }
  }
  // start-session without --document-name opens the default shell document (ssm StartSession API reference).
  if (action === 'ssm:StartSession' && !documentName) arns.push(`arn:${ctx.partition}:ssm:${ctx.region}:${ctx.account}:document/SSM-SessionManagerRunShell`);
  if (types.has('instance') || types.has('managed-instance')) {
    const instanceArn = (id: string) =>
      id.startsWith('mi-') ? `arn:${ctx.partition}:ssm:${ctx.region}:${ctx.account}:managed-instance/${id}` : `arn:${ctx.partition}:ec2:${ctx.region}:${ctx.account}:instance/${id}`;
    for (const id of [...nonEmptyStrings(params.InstanceIds), ...nonEmptyStrings(params.InstanceId), ...nonEmptyStrings(params.Target)]) arns.push(instanceArn(id));
    // `--targets Key=InstanceIds,Values=…` names the instances; a tag or resource-group target selects them when
    // the command runs, so every instance and managed node of the account and region (SSM API Reference,
    // SendCommand Targets; IAM evaluates ssm:SendCommand on each targeted instance).
    const targets = Array.isArray(params.Targets) ? (params.Targets as ApiParams[]) : [];
    for (const target of targets) {
      const key = nonEmptyString(target?.Key);
      if (key === 'InstanceIds') for (const id of nonEmptyStrings(target?.Values)) arns.push(instanceArn(id));
      else if (key) {
        arns.push(`arn:${ctx.partition}:ec2:${ctx.region}:${ctx.account}:instance/*`);
        if (types.has('managed-instance')) arns.push(`arn:${ctx.partition}:ssm:${ctx.region}:${ctx.account}:managed-instance/*`);
      }
    }
  }
  return arns;
}

// A queue URL is `SCHEME://HOST/ACCOUNT/QUEUENAME` (Amazon SQS Developer Guide, "Queue and message
// identifiers"); queue names are 1-80 of [A-Za-z0-9_-], FIFO queues end in `.fifo`. The host varies: sqs.REGION.
// amazonaws.com(.cn), the dual-stack sqs.REGION.api.aws, the legacy REGION.queue.amazonaws.com and
// queue.amazonaws.com (us-east-1), VPC endpoints, moto's http://localhost:PORT. The queue is the path whatever
// the host; the region comes from the host when it names one, else it is the call's region.
const QUEUE_URL = /^https?:\/\/([A-Za-z0-9.-]+)(?::\d{1,5})?\/(\d{12})\/([A-Za-z0-9_-]{1,80}(?:\.fifo)?)\/?$/;
const REGION_LABEL = /^[a-z]{2,4}(?:-[a-z]+)+-\d{1,2}$/;

/** A queue URL → its ARN; refused when the path does not name an account and a queue. */
export function sqsUrlArn(ctx: ArnContext, url: string, member = 'QueueUrl'): string {
  const match = QUEUE_URL.exec(url);
  if (!match) throw unreadable(member, url, 'a queue URL https://HOST/ACCOUNT/QUEUENAME');
  const host = match[1]!.toLowerCase();
  const region = host === 'queue.amazonaws.com' ? 'us-east-1' : (host.split('.').find((label) => REGION_LABEL.test(label)) ?? ctx.region);
  const account = match[2]!;
  noteAccount(ctx, account);
  return `arn:${partitionOf(region)}:sqs:${region}:${account}:${match[3]}`;
}

function sqsResources(action: string, params: ApiParams, ctx: ArnContext): string[] {
  if (!actionResourceTypes(action).includes('queue')) return [];
  const queueUrl = nonEmptyString(params.QueueUrl);
  if (queueUrl) return [sqsUrlArn(ctx, queueUrl)];
  const queueName = nonEmptyString(params.QueueName);
  if (queueName) {
    const owner = nonEmptyString(params.QueueOwnerAWSAccountId);
    const account = owner ? accountMember('QueueOwnerAWSAccountId', owner) : ctx.account;
    noteAccount(ctx, account);
    return [`arn:${ctx.partition}:sqs:${ctx.region}:${account}:${queueName}`];
  }
  return [];
}

function snsResources(action: string, params: ApiParams, ctx: ArnContext): string[] {
  const arns: string[] = [];
  for (const member of ['TopicArn', 'TargetArn', 'PlatformApplicationArn', 'ResourceArn']) {
    const arn = nonEmptyString(params[member]);
    if (arn && parseArn(arn)) arns.push(given(ctx, arn));
  }
  // A subscription ARN is its topic's ARN plus `:ID`.
  const subscriptionArn = nonEmptyString(params.SubscriptionArn);
  if (subscriptionArn && parseArn(subscriptionArn)) arns.push(given(ctx, subscriptionArn.replace(/:[^:]+$/, '')));
  const topicName = nonEmptyString(params.Name);
  if (!arns.length && topicName && actionResourceTypes(action).includes('topic')) arns.push(`arn:${ctx.partition}:sns:${ctx.region}:${ctx.account}:${topicName}`);
  return arns;
}

function kmsKeyArn(ctx: ArnContext, keyId: string | undefined): string {
  const anyKey = `arn:${ctx.partition}:kms:${ctx.region}:${ctx.account}:key/*`;
  if (!keyId) return anyKey;
  const arn = parseArn(keyId);
  if (arn) {
    noteAccount(ctx, arn.account);
    // An alias ARN names no key: the key behind it needs a lookup (docs/aws-cli-parsing.md §5.2).
    return arn.resource.startsWith('alias/') ? `arn:${arn.partition}:kms:${arn.region}:${arn.account}:key/*` : keyId;
  }
  if (keyId.startsWith('alias/')) return anyKey;
  return `arn:${ctx.partition}:kms:${ctx.region}:${ctx.account}:key/${keyId}`;
}

function kmsResources(action: string, params: ApiParams, ctx: ArnContext): string[] {
  const types = new Set(actionResourceTypes(action));
  const arns: string[] = [];
  const aliasName = nonEmptyString(params.AliasName);
  if (types.has('alias') && aliasName) arns.push(`arn:${ctx.partition}:kms:${ctx.region}:${ctx.account}:${aliasName}`);
  if (types.has('key')) {
    if (action === 'kms:ReEncryptTo') arns.push(kmsKeyArn(ctx, nonEmptyString(params.DestinationKeyId)));
    else if (action === 'kms:ReEncryptFrom') arns.push(kmsKeyArn(ctx, nonEmptyString(params.SourceKeyId)));
    else arns.push(kmsKeyArn(ctx, nonEmptyString(params.KeyId) ?? nonEmptyString(params.TargetKeyId)));
  }
  return arns;
}

function logsResources(action: string, params: ApiParams, ctx: ArnContext): string[] {
  const types = new Set(actionResourceTypes(action));
  const logGroup = nonEmptyString(params.logGroupName) ?? nonEmptyString(params.logGroupIdentifier);
  const arns: string[] = [];
  const logGroupArn = (group: string) => (group.startsWith('arn:') ? given(ctx, group) : `arn:${ctx.partition}:logs:${ctx.region}:${ctx.account}:log-group:${group}:*`);
  if (logGroup && (types.has('log-group') || types.has('log-stream'))) arns.push(logGroupArn(logGroup));
  for (const identifier of nonEmptyStrings(params.logGroupIdentifiers)) arns.push(logGroupArn(identifier));
  const destinationName = nonEmptyString(params.destinationName);
  if (destinationName && types.has('destination')) arns.push(`arn:${ctx.partition}:logs:${ctx.region}:${ctx.account}:destination:${destinationName}`);
  return arns;
}

function cloudformationResources(action: string, params: ApiParams, ctx: ArnContext): string[] {
  const types = new Set(actionResourceTypes(action));
  const arns: string[] = [];
  const stackName = nonEmptyString(params.StackName);
  if (stackName && types.has('stack')) arns.push(stackName.startsWith('arn:') ? given(ctx, stackName) : `arn:${ctx.partition}:cloudformation:${ctx.region}:${ctx.account}:stack/${stackName}/*`);
  const stackSetName = nonEmptyString(params.StackSetName);
  if (stackSetName && types.has('stackset')) arns.push(stackSetName.startsWith('arn:') ? given(ctx, stackSetName) : `arn:${ctx.partition}:cloudformation:${ctx.region}:${ctx.account}:stackset/${stackSetName}:*`);
  const changeSetName = nonEmptyString(params.ChangeSetName);
  if (changeSetName && changeSetName.startsWith('arn:') && types.has('changeset')) arns.push(given(ctx, changeSetName));
  return arns;
}

function ecrResources(action: string, params: ApiParams, ctx: ArnContext): string[] {
  // registryId is the registry's account: another account's is a cross-account pull or push; anything but an
  // account id (`*`) is refused, never written into the ARN's account field.
  const registry = nonEmptyString(params.registryId);
  const account = registry ? accountMember('registryId', registry) : ctx.account;
  noteAccount(ctx, account);
  if (!actionResourceTypes(action).includes('repository')) return [];
  const names = [...nonEmptyStrings(params.repositoryName), ...nonEmptyStrings(params.repositoryNames)];
  return names.map((name) => (name.startsWith('arn:') ? given(ctx, name) : `arn:${ctx.partition}:ecr:${ctx.region}:${account}:repository/${name}`));
}

function stsResources(action: string, params: ApiParams, ctx: ArnContext): string[] {
  const roleArn = nonEmptyString(params.RoleArn);
  if (roleArn) return [given(ctx, roleArn)];
  const name = nonEmptyString(params.Name);
  if (action === 'sts:GetFederationToken' && name) return [`arn:${ctx.partition}:sts::${ctx.account}:federated-user/${name}`];
  return [];
}

function dynamodbResources(action: string, params: ApiParams, ctx: ArnContext): string[] {
  const types = new Set(actionResourceTypes(action));
  const tableArn = (table: string) => (table.startsWith('arn:') ? given(ctx, table) : `arn:${ctx.partition}:dynamodb:${ctx.region}:${ctx.account}:table/${table}`);
  const arns: string[] = [];
  const tableName = nonEmptyString(params.TableName);
  const indexName = nonEmptyString(params.IndexName);
  if (tableName && types.has('table')) arns.push(tableArn(tableName));
  if (tableName && indexName && types.has('index')) arns.push(`${tableArn(tableName)}/index/${indexName}`);
  if (params.RequestItems && typeof params.RequestItems === 'object') for (const table of Object.keys(params.RequestItems)) arns.push(tableArn(table));
  for (const member of ['StreamArn', 'BackupArn', 'ResourceArn']) {
    const arn = nonEmptyString(params[member]);
    if (arn && parseArn(arn)) arns.push(given(ctx, arn));
  }
  return arns;
}

function bedrockResources(_action: string, params: ApiParams, ctx: ArnContext): string[] {
  const modelId = nonEmptyString(params.modelId) ?? nonEmptyString(params.modelIdentifier);
  if (!modelId) return [];
  if (modelId.startsWith('arn:')) return [given(ctx, modelId)];
  return [`arn:${ctx.partition}:bedrock:${ctx.region}::foundation-model/${modelId}`];
}

/**
 * ECS (Amazon ECS Developer Guide, "Amazon Resource Names (ARNs) and IDs", long ARN format): services, tasks and
 * container instances live under their cluster (`service/CLUSTER/NAME`), and a call without `--cluster` acts on
 * the cluster named `default` (ECS API Reference, `cluster`: "If you do not specify a cluster, the default
 * cluster is assumed"). A task definition without `:REVISION` is its latest ACTIVE revision: `family:*`.
 */
function ecsResources(action: string, params: ApiParams, ctx: ArnContext): string[] {
  const types = new Set(actionResourceTypes(action));
  const arns: string[] = [];
  let base = `arn:${ctx.partition}:ecs:${ctx.region}:${ctx.account}:`;
  let cluster = 'default';
  const clusterParam = nonEmptyString(params.cluster);
  if (clusterParam) {
    const arn = parseArn(clusterParam);
    if (arn) {
      if (arn.service !== 'ecs' || !arn.resource.startsWith('cluster/')) throw unreadable('cluster', clusterParam, 'a cluster name or arn:…:ecs:REGION:ACCOUNT:cluster/NAME');
      given(ctx, clusterParam);
      base = `arn:${arn.partition}:ecs:${arn.region}:${arn.account}:`;
      cluster = arn.resource.slice('cluster/'.length);
    } else cluster = clusterParam;
  }
  const named = (type: string, members: string[], arnOf: (id: string) => string) => {
    if (!types.has(type)) return;
    for (const member of members) for (const id of nonEmptyStrings(params[member])) arns.push(id.startsWith('arn:') ? given(ctx, id) : arnOf(id));
  };
  if (types.has('cluster') && (clusterParam || requiredResourceTypes(action).includes('cluster'))) arns.push(`${base}cluster/${cluster}`);
  named('cluster', ['clusters'], (id) => `${base}cluster/${id}`);
  named('service', ['service', 'services', 'serviceName'], (id) => `${base}service/${cluster}/${id}`);
  named('task', ['task', 'tasks'], (id) => `${base}task/${cluster}/${id}`);
  named('container-instance', ['containerInstance', 'containerInstances'], (id) => `${base}container-instance/${cluster}/${id}`);
  named('task-definition', ['taskDefinition', 'family'], (id) => `${base}task-definition/${id.includes(':') ? id : `${id}:*`}`);
  named('capacity-provider', ['capacityProvider'], (id) => `${base}capacity-provider/${id}`);
  const service = nonEmptyString(params.service);
  if (service && !service.startsWith('arn:')) named('task-set', ['taskSet', 'taskSets'], (id) => `${base}task-set/${cluster}/${service}/${id}`);
  return arns;
}

/** Budgets are global and live in the account named by `AccountId` (AWS Budgets API Reference). */
function budgetsResources(action: string, params: ApiParams, ctx: ArnContext): string[] {
  const types = new Set(actionResourceTypes(action));
  const accountParam = nonEmptyString(params.AccountId);
  const account = accountParam ? accountMember('AccountId', accountParam) : ctx.account;
  noteAccount(ctx, account);
  const budget = nonEmptyString(params.BudgetName) ?? '*';
  const base = `arn:${ctx.partition}:budgets::${account}:budget/${budget}`;
  if (types.has('budgetAction')) return [`${base}/action/${nonEmptyString(params.ActionId) ?? '*'}`];
  if (types.has('budget')) return [base];
  return [];
}

/**
 * EventBridge: a rule on the default bus is `rule/NAME`, on another bus `rule/BUS/NAME`; a call without
 * `--event-bus-name` acts on the bus named `default` (Amazon EventBridge User Guide, "Resource-based policies";
 * EventBridge API Reference, EventBusName: "If you omit this, the default event bus is used"). `PutEvents` names a
 * bus per entry.
 */
function eventsResources(action: string, params: ApiParams, ctx: ArnContext): string[] {
  const types = new Set(actionResourceTypes(action));
  const arns: string[] = [];
  const busOf = (value: string | undefined): { base: string; bus: string } => {
    const arn = value ? parseArn(value) : undefined;
    if (arn && value) {
      if (arn.service !== 'events' || !arn.resource.startsWith('event-bus/')) throw unreadable('EventBusName', value, 'an event bus name or arn:…:events:REGION:ACCOUNT:event-bus/NAME');
      given(ctx, value);
      return { base: `arn:${arn.partition}:events:${arn.region}:${arn.account}:`, bus: arn.resource.slice('event-bus/'.length) };
    }
    return { base: `arn:${ctx.partition}:events:${ctx.region}:${ctx.account}:`, bus: value ?? 'default' };
  };
  const ruleTypes = types.has('rule-on-default-event-bus') || types.has('rule-on-custom-event-bus');
  if (ruleTypes) {
    const { base, bus } = busOf(nonEmptyString(params.EventBusName));
    const rule = nonEmptyString(params.Rule) ?? nonEmptyString(params.Name);
    if (rule) arns.push(rule.startsWith('arn:') ? given(ctx, rule) : bus === 'default' ? `${base}rule/${rule}` : `${base}rule/${bus}/${rule}`);
  } else if (types.has('event-bus')) {
    const entries = Array.isArray(params.Entries) ? (params.Entries as ApiParams[]) : undefined;
    const buses = entries ? entries.map((entry) => nonEmptyString(entry?.EventBusName)) : [nonEmptyString(params.EventBusName) ?? nonEmptyString(params.Name)];
    for (const name of buses) {
      if (!entries && name === undefined && !requiredResourceTypes(action).includes('event-bus')) continue;
      const { base, bus } = busOf(name);
      arns.push(`${base}event-bus/${bus}`);
    }
  }
  return arns;
}

/** Services whose ARNs need more than filling a template (docs/aws-cli-parsing.md §5.2), by IAM prefix. */
const HANDLERS: Record<string, (action: string, params: ApiParams, ctx: ArnContext) => string[]> = {
  s3: s3Resources,
  lambda: lambdaResources,
  iam: iamResources,
  ec2: ec2Resources,
  rds: rdsResources,
  secretsmanager: secretsmanagerResources,
  ssm: ssmResources,
  sqs: sqsResources,
  sns: snsResources,
  kms: kmsResources,
  logs: logsResources,
  cloudformation: cloudformationResources,
  ecr: ecrResources,
  sts: stsResources,
  dynamodb: dynamodbResources,
  bedrock: bedrockResources,
  ecs: ecsResources,
  budgets: budgetsResources,
  events: eventsResources,
};

/** SAR templates of a resource type: most have one, API Gateway's list several separated by `, `. */
function templatesOf(prefix: string, type: string): string[] {
  const template = arnTemplate(prefix, type);
  return template ? template.split(/,\s*/) : [];
}

const templateRegexes = new Map<string, RegExp>();
/** A template as a RegExp: each variable stands for any text (`arn:aws:lambda:…:code-signing-config:.*`). */
export function templateRegex(template: string): RegExp {
  let re = templateRegexes.get(template);
  if (!re) {
    re = new RegExp(`^${template.split(/\$\{\w+\}/).map((part) => part.replace(/[.*+?^$()|[\]\\{}]/g, '\\$&')).join('.*')}$`);
    templateRegexes.set(template, re);
  }
  return re;
}

/**
 * A template with the context filled and every other variable `*`: the type's resources in the account. Undefined
 * when that would not pin the service, region and account (AWS Backup's recovery points are
 * `arn:${Partition}:${Vendor}:${Region}:*:…`): such a pattern is no narrower than `*`.
 */
export function typeWildcard(template: string, ctx: ArnContext): string | undefined {
  const arn = template.replace(/\$\{(\w+)\}/g, (_placeholder, variable: string) =>
    variable === 'Partition' ? ctx.partition : variable === 'Region' ? ctx.region : variable === 'Account' ? ctx.account : '*',
  );
  return pinned(arn) ? arn : undefined;
}

/** The ARN's partition, service, region and account hold no wildcard or escaped caller text. */
function pinned(arn: string): boolean {
  const parsed = parseArn(arn);
  return !!parsed && /^[\w-]+$/.test(parsed.partition) && /^[\w-]+$/.test(parsed.service) && /^[a-z0-9-]*$/.test(parsed.region) && /^(\d{12}|aws|)$/.test(parsed.account);
}

/**
 * ARN-valued members of the call that name a resource of one of the action's types (by the type's template):
 * every resource the request names is granted, not only the first type's (`lambda
 * put-function-code-signing-config` names the function and the code-signing config; SAR marks both required).
 */
function namedArns(action: string, params: ApiParams, ctx: ArnContext, have: string[]): string[] {
  const prefix = action.slice(0, action.indexOf(':'));
  const templates = actionResourceTypes(action).flatMap((type) => templatesOf(prefix, type));
  const covered = (arn: string) => templates.filter((template) => templateRegex(template).test(arn));
  const haveTemplates = new Set(have.flatMap(covered));
  const out: string[] = [];
  for (const value of Object.values(params)) {
    for (const candidate of nonEmptyStrings(value)) {
      const arn = parseArn(candidate);
      if (!arn || arn.service !== prefix || have.includes(candidate)) continue;
      const matches = covered(candidate);
      if (matches.length && matches.some((template) => !haveTemplates.has(template))) out.push(given(ctx, candidate));
    }
  }
  return out;
}

/** A member (lower case) named like an identifier: `…name`, `…id`, `…arn`, `…identifier`, one or several. */
const IDENTIFIER_MEMBER = /(name|id|arn|identifier)s?$/;

/**
 * Other services: fill the action's SAR ARN templates from the call's members (docs/aws-cli-parsing.md §5.2).
 * A variable takes, in order: the member of the same name (`${FunctionName}` ← FunctionName); the member named
 * without the `Name`/`Id` suffix (`${WorkGroupName}` ← WorkGroup); the resource type's name plus the suffix
 * (`${GroupFriendlyName}` of `autoScalingGroup` ← AutoScalingGroupName). A bare `Name`/`Id` member fills a
 * variable only when it is the one name (id) variable left unfilled among the action's required resource types
 * (all its types when none is required), no other member names its resource and the action is about it (its
 * name holds the resource's): `glue get-table --database-name D --name T` fills `table/D/T`, while `athena
 * create-notebook --work-group W --name N` scopes workgroup W (N is the notebook, which has no ARN), and
 * `logs delete-delivery-source --name N` names no delivery destination. A variable the request does
 * not give becomes `*` as long as one of the template's own variables was filled
 * (`autoScalingGroup:*:autoScalingGroupName/NAME`): the narrowest pattern the ARN format allows, never a bare `*`.
 * Templates made only of partition, region and account (Glue's `catalog`) are complete as they stand.
 */
function templateResources(action: string, params: ApiParams, ctx: ArnContext): string[] {
  const prefix = action.slice(0, action.indexOf(':'));
  const byLowerName = new Map<string, unknown>();
  for (const [member, value] of Object.entries(params)) byLowerName.set(member.toLowerCase(), value);
  const usable = (value: unknown): value is string => typeof value === 'string' && value !== '' && !value.startsWith('arn:');
  const templatesFor = (types: string[]) => types.flatMap((type) => templatesOf(prefix, type).map((template) => ({ template, typeKey: type.replace(/[^A-Za-z0-9]/g, '').toLowerCase() })));
  const templates = templatesFor(actionResourceTypes(action));
  // The bare member goes to a resource the action always acts on (SAR's required types) before an optional one.
  const required = requiredResourceTypes(action);
  const openFrom = required.length ? templatesFor(required) : templates;
  const direct = (variable: string, typeKey: string): string | undefined => {
    const lower = variable.toLowerCase();
    const suffix = /(name|id)$/.exec(lower)?.[1];
    const stem = suffix ? lower.slice(0, -suffix.length) : '';
    // AWS names an "id or ARN" member `…Identifier` (CloudFront's `--identifier`, Glue's `IntegrationIdentifier`):
    // an `${…Id}` variable takes it too (an ARN value is not usable here and is read as an ARN instead).
    const identifier = suffix === 'id' ? [`${stem}identifier`, `${typeKey}identifier`] : [];
    const candidates = [lower, ...(suffix ? [stem, `${typeKey}${suffix}`, ...identifier] : [])];
    return candidates.map((candidate) => byLowerName.get(candidate)).find(usable);
  };
  // A list member naming several resources of one kind (`--vpc-endpoint-ids a b`: ${VpcEndpointId} ← VpcEndpointIds).
  const plural = (variable: string): string[] => {
    const list = byLowerName.get(`${variable.toLowerCase()}s`);
    return Array.isArray(list) && list.length && list.every(usable) ? (list as string[]) : [];
  };
  // Name/id variables no member fills, over every template of the action: a bare `Name`/`Id` goes to the one left.
  const open = new Map<string, Set<string>>();
  for (const { template, typeKey } of openFrom) {
    for (const [, variable] of template.matchAll(/\$\{(\w+)\}/g)) {
      const suffix = /(Name|Id)$/.exec(variable!)?.[1]?.toLowerCase();
      if (!suffix || ['Partition', 'Region', 'Account'].includes(variable!) || direct(variable!, typeKey) !== undefined) continue;
      const stem = variable!.toLowerCase().slice(0, -suffix.length);
      // Another identifier member about this resource (`--distribution-id`, not `--distribution-config`) names it.
      if ([...byLowerName.keys()].some((member) => member !== suffix && stem && member.startsWith(stem) && IDENTIFIER_MEMBER.test(member))) continue;
      open.set(suffix, (open.get(suffix) ?? new Set()).add(variable!));
    }
  }
  // …and only to the resource the action is about: `logs:DeleteDeliverySource --name N` does not name a delivery
  // destination, whatever SAR's resource type for it.
  const actionKey = action.slice(action.indexOf(':') + 1).toLowerCase();
  const bare = (variable: string, typeKey: string): string | undefined => {
    const suffix = /(Name|Id)$/.exec(variable)?.[1]?.toLowerCase();
    if (!suffix || open.get(suffix)?.size !== 1 || !open.get(suffix)!.has(variable)) return undefined;
    const stem = variable.toLowerCase().slice(0, -suffix.length);
    if (!actionKey.includes(typeKey) && !(stem && actionKey.includes(stem))) return undefined;
    const names = suffix === 'id' ? ['id', 'identifier'] : [suffix];
    for (const name of names) {
      const value = byLowerName.get(name);
      if (usable(value)) return value;
    }
    // A member named by the end of the resource type's name (`WindowId` for SSM's maintenancewindow, whose
    // template says `${ResourceId}`; `BaselineId` for patchbaseline): the same resource, in the API's words.
    for (const [member, value] of byLowerName) {
      for (const name of names) {
        const head = member.endsWith(name) ? member.slice(0, -name.length) : '';
        if (head.length >= 4 && typeKey.endsWith(head) && usable(value)) return value;
      }
    }
    return undefined;
  };
  const arns: string[] = [];
  for (const { template, typeKey } of templates) {
    // At most one variable may take its values from a list member: one ARN per element.
    const listVariable = [...template.matchAll(/\$\{(\w+)\}/g)].map((m) => m[1]!).find((variable) => direct(variable, typeKey) === undefined && plural(variable).length);
    for (const element of listVariable ? plural(listVariable) : [undefined]) {
      let filled = 0;
      let variables = 0;
      const arn = template.replace(/\$\{(\w+)\}/g, (_placeholder, variable: string, offset: number) => {
        if (variable === 'Partition') return ctx.partition;
        if (variable === 'Region') return ctx.region;
        if (variable === 'Account') return ctx.account;
        variables++;
        const value = variable === listVariable ? element : (direct(variable, typeKey) ?? bare(variable, typeKey));
        if (value === undefined) return '*';
        filled++;
        // A path-like id (`--setting-id /ssm/managed-instance/activation-tier`) after the type's `/`: the ARN has
        // one slash there (`servicesetting/ssm/…`, SSM API Reference, GetServiceSetting), as for parameters.
        return template[offset - 1] === '/' ? value.replace(/^\/+/, '') : value;
      });
      // A fill that leaves the service, region or account open names no narrower set than `*`: not used.
      if ((filled || !variables) && pinned(arn)) arns.push(arn);
    }
  }
  // Only context-filled templates (a Glue catalog) say nothing about the call by themselves.
  const fromCall = arns.some((arn) => templates.some(({ template }) => /\$\{(?!Partition|Region|Account)\w+\}/.test(template) && templateRegex(template).test(arn)));
  const named = namedArns(action, params, ctx, fromCall ? arns : []);
  if (fromCall || named.length) return [...arns, ...named];
  return [...arns, ...ownServiceArns(prefix, params, ctx)];
}

/**
 * Last resort: ARNs of the action's own service that the call passes in an `…Arn`/`…Arns` member, though SAR's
 * templates do not describe their shape (a newer resource form). Granting exactly the ARN the caller names is no
 * wider than the call.
 */
function ownServiceArns(prefix: string, params: ApiParams, ctx: ArnContext): string[] {
  const out: string[] = [];
  for (const [member, value] of Object.entries(params)) {
    if (!/(Arn|ARN)s?$/.test(member)) continue;
    for (const candidate of nonEmptyStrings(value)) if (parseArn(candidate)?.service === prefix) out.push(given(ctx, candidate));
  }
  return out;
}

/** ARNs for one action from API parameters; [] when nothing could be derived. */
export function resourcesFor(action: string, params: ApiParams, ctx: ArnContext): string[] {
  const prefix = action.slice(0, action.indexOf(':'));
  const handler = HANDLERS[prefix];
  let arns = handler ? handler(action, params, ctx) : templateResources(action, params, ctx);
  // A handler covers its service's common identifiers; for the others (`ec2 delete-vpc-endpoints
  // --vpc-endpoint-ids`), the generic template filling applies as for any service. Not for S3, whose handler
  // reads every bucket and key form: a template would turn an unread key into `bucket/*`.
  if (handler) arns = arns.length ? [...arns, ...namedArns(action, params, ctx, arns)] : prefix === 's3' ? [] : templateResources(action, params, ctx);
  return [...new Set(arns)];
}
