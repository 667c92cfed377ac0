/**
 * Resource ARNs from identifying parameters (docs/aws-cli-parsing.md §5). Account and region come from the
 * context; an account or region written in an ARN or URL parameter overrides them (and marks the call
 * cross-account). Where nothing can be derived the caller gets `*` with derived=false, or an account-scoped
 * wildcard where no narrower one is knowable (kms key/* behind an alias).
 */
import { GuardError } from '../errors.js';
import { actionResourceTypes, arnTemplate } from './iam-catalog.js';

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
    throw new GuardError('parse', `${arn.replace(/\$\{(.)\}/g, '$1')}: an ARN parameter cannot contain wildcards or policy variables`);
  }
  const parsed = parseArn(arn);
  if (parsed) noteAccount(ctx, parsed.account);
  return arn;
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
    if (owner) noteAccount(ctx, owner);
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
  const policyArn = nonEmptyString(params.PolicyArn);
  if (types.has('policy') && policyArn) arns.push(given(ctx, policyArn));
  for (const member of ['OpenIDConnectProviderArn', 'SAMLProviderArn', 'ServerCertificateArn']) {
    const arn = nonEmptyString(params[member]);
    if (arn) arns.push(given(ctx, arn));
  }
  const serialNumber = nonEmptyString(params.SerialNumber);
  if (types.has('mfa') && serialNumber) arns.push(given(ctx, serialNumber));
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

function ec2Resources(action: string, params: ApiParams, ctx: ArnContext): string[] {
  const types = new Set(actionResourceTypes(action));
  const arns: string[] = [];
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
  ['proxy', 'DBProxyName'],
];

function rdsResources(action: string, params: ApiParams, ctx: ArnContext): string[] {
  const types = new Set(actionResourceTypes(action));
  const arns: string[] = [];
  for (const [type, member] of RDS_ID_PARAMS) {
    const id = nonEmptyString(params[member]);
    if (!id || !types.has(type)) continue;
    arns.push(id.startsWith('arn:') ? given(ctx, id) : `arn:${ctx.partition}:rds:${ctx.region}:${ctx.account}:${type}:${id}`);
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
  if (types.has('document') && documentName) {
    // AWS-owned documents (AWS-*) live in no account (docs/aws-cli-parsing.md §5.2).
    const owner = /^(AWS|Amazon)/.test(documentName) ? '' : ctx.account;
    arns.push(documentName.startsWith('arn:') ? given(ctx, documentName) : `arn:${ctx.partition}:ssm:${ctx.region}:${owner}:document/${documentName}`);
  }
  // start-session without --document-name opens the default shell document (ssm StartSession API reference).
  if (action === 'ssm:StartSession' && !documentName) arns.push(`arn:${ctx.partition}:ssm:${ctx.region}:${ctx.account}:document/SSM-SessionManagerRunShell`);
  if (types.has('instance') || types.has('managed-instance')) {
    for (const id of [...nonEmptyStrings(params.InstanceIds), ...nonEmptyStrings(params.InstanceId), ...nonEmptyStrings(params.Target)]) {
      arns.push(id.startsWith('mi-') ? `arn:${ctx.partition}:ssm:${ctx.region}:${ctx.account}:managed-instance/${id}` : `arn:${ctx.partition}:ec2:${ctx.region}:${ctx.account}:instance/${id}`);
    }
  }
  return arns;
}

/** A queue URL (`https://sqs.REGION.amazonaws.com/ACCOUNT/NAME` and the legacy forms) → its ARN. */
function sqsUrlArn(ctx: ArnContext, url: string): string | undefined {
  const match = /^https?:\/\/(?:sqs\.([\w-]+)\.amazonaws\.com(?:\.cn)?|([\w-]+)\.queue\.amazonaws\.com|queue\.amazonaws\.com)\/(\d{12})\/([\w.-]+)\/?$/.exec(url);
  if (!match) return undefined;
  const region = match[1] ?? match[2] ?? 'us-east-1';
  const account = match[3]!;
  noteAccount(ctx, account);
  return `arn:${partitionOf(region)}:sqs:${region}:${account}:${match[4]}`;
}

function sqsResources(action: string, params: ApiParams, ctx: ArnContext): string[] {
  if (!actionResourceTypes(action).includes('queue')) return [];
  const queueUrl = nonEmptyString(params.QueueUrl);
  if (queueUrl) {
    const arn = sqsUrlArn(ctx, queueUrl);
    return arn ? [arn] : [];
  }
  const queueName = nonEmptyString(params.QueueName);
  if (queueName) {
    const account = nonEmptyString(params.QueueOwnerAWSAccountId) ?? ctx.account;
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
  const repositoryName = nonEmptyString(params.repositoryName);
  if (!actionResourceTypes(action).includes('repository') || !repositoryName) return [];
  // registryId is the registry's account: another account's is a cross-account pull or push.
  const account = nonEmptyString(params.registryId) ?? ctx.account;
  noteAccount(ctx, account);
  return [`arn:${ctx.partition}:ecr:${ctx.region}:${account}:repository/${repositoryName}`];
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
};

/**
 * Other services: fill the action's SAR ARN templates from parameters with the same name as the template
 * variable (case-insensitive), or use ARN parameters of the same service. Anything else: not derived.
 */
function templateResources(action: string, params: ApiParams, ctx: ArnContext): string[] {
  const prefix = action.slice(0, action.indexOf(':'));
  const arns: string[] = [];
  const byLowerName = new Map<string, unknown>();
  for (const [member, value] of Object.entries(params)) byLowerName.set(member.toLowerCase(), value);
  const types = actionResourceTypes(action).filter((type) => arnTemplate(prefix, type));
  for (const type of types) {
    const template = arnTemplate(prefix, type)!;
    let complete = true;
    const arn = template.replace(/\$\{(\w+)\}/g, (_placeholder, variable: string) => {
      if (variable === 'Partition') return ctx.partition;
      if (variable === 'Region') return ctx.region;
      if (variable === 'Account') return ctx.account;
      let value = byLowerName.get(variable.toLowerCase());
      // `eks describe-cluster --name` fills ${ClusterName}: a bare name/id member names the action's only
      // resource type (never guessed when the action has several).
      if (value === undefined && types.length === 1) {
        if (variable.endsWith('Name')) value = byLowerName.get('name');
        else if (variable.endsWith('Id')) value = byLowerName.get('id');
      }
      if (typeof value === 'string' && value && !value.startsWith('arn:')) return value;
      complete = false;
      return '';
    });
    if (complete) arns.push(arn);
  }
  if (arns.length) return arns;
  for (const value of Object.values(params)) {
    if (typeof value === 'string' && parseArn(value)?.service === prefix) arns.push(given(ctx, value));
  }
  return arns;
}

/** ARNs for one action from API parameters; [] when nothing could be derived. */
export function resourcesFor(action: string, params: ApiParams, ctx: ArnContext): string[] {
  const prefix = action.slice(0, action.indexOf(':'));
  const handler = HANDLERS[prefix];
  const arns = handler ? handler(action, params, ctx) : templateResources(action, params, ctx);
  return [...new Set(arns)];
}
