/**
 * Resource ARNs from identifying parameters (reference §4). Account and region come from the context; an
 * account or region written in an ARN or URL parameter overrides them (and marks the call cross-account).
 * Where nothing can be derived the caller gets `*` with derived=false, or an account-scoped wildcard where
 * the reference recommends one (kms key/*).
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

/** Partition from region (reference §4.1). */
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

export function parseArn(s: unknown): { partition: string; service: string; region: string; account: string; resource: string } | undefined {
  if (typeof s !== 'string') return undefined;
  const m = ARN_RE.exec(s);
  if (!m) return undefined;
  return { partition: m[1]!, service: m[2]!, region: m[3]!, account: m[4] ?? '', resource: m[5]! };
}

function noteAccount(c: ArnContext, account: string) {
  if (/^\d{12}$/.test(account) && account !== c.account) c.foreignAccounts.add(account);
}

/**
 * An ARN given as a parameter value: used as-is, its account recorded. AWS APIs never take a wildcard or a policy
 * variable as an identifier; the caller's `*`, `?` and `$` arrive escaped (`${*}`, iam-literal.ts), so an ARN
 * holding one is refused rather than granted in every account (`arn:aws:secretsmanager:us-east-1:*:secret:x`).
 */
function given(c: ArnContext, v: string): string {
  if (v.includes('${')) {
    throw new GuardError('parse', `${v.replace(/\$\{(.)\}/g, '$1')}: an ARN parameter cannot contain wildcards or policy variables`);
  }
  const a = parseArn(v);
  if (a) noteAccount(c, a.account);
  return v;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const strs = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x !== '') : str(v) ? [v as string] : [];

type P = Record<string, unknown>;

function s3(action: string, p: P, c: ArnContext): string[] {
  const types = actionResourceTypes(action);
  const bucket = str(p.Bucket);
  // A bucket owner named in the call that is not the target account: a cross-account call.
  for (const k of ['ExpectedBucketOwner', 'ExpectedSourceBucketOwner']) if (str(p[k])) noteAccount(c, p[k] as string);
  if (!bucket) return [];
  if (parseArn(bucket)) return [given(c, bucket)];
  const out: string[] = [];
  if (types.includes('object') || types.includes('accesspointobject')) {
    if (str(p.Key)) out.push(`arn:${c.partition}:s3:::${bucket}/${p.Key}`);
    const del = (p.Delete as P | undefined)?.Objects;
    if (Array.isArray(del)) for (const o of del) if (str((o as P)?.Key)) out.push(`arn:${c.partition}:s3:::${bucket}/${(o as P).Key}`);
    if (out.length) return out;
  }
  if (types.includes('bucket')) return [`arn:${c.partition}:s3:::${bucket}`];
  return out;
}

function lambdaFn(c: ArnContext, v: string, qualifier?: string): string {
  if (v.startsWith('arn:')) return given(c, v);
  const m = /^(\d{12}):function:(.+)$/.exec(v);
  let account = c.account;
  let name = v;
  if (m) {
    account = m[1]!;
    name = m[2]!;
    noteAccount(c, account);
  }
  return `arn:${c.partition}:lambda:${c.region}:${account}:function:${name}${qualifier ? `:${qualifier}` : ''}`;
}

function lambda(action: string, p: P, c: ArnContext): string[] {
  const types = actionResourceTypes(action);
  if (str(p.FunctionName) && types.includes('function')) return [lambdaFn(c, p.FunctionName as string, str(p.Qualifier))];
  if (str(p.Arn) && parseArn(p.Arn)) return [given(c, p.Arn as string)];
  if (str(p.LayerName)) {
    const l = p.LayerName as string;
    if (l.startsWith('arn:')) return [given(c, l)];
    const v = p.VersionNumber;
    return [`arn:${c.partition}:lambda:${c.region}:${c.account}:layer:${l}${v !== undefined && types.includes('layerVersion') ? `:${v}` : ''}`];
  }
  return [];
}

function iam(action: string, p: P, c: ArnContext): string[] {
  const types = new Set(actionResourceTypes(action));
  const out: string[] = [];
  const base = `arn:${c.partition}:iam::${c.account}:`;
  if (types.has('role') && str(p.RoleName)) out.push(`${base}role/${p.RoleName}`);
  if (types.has('user') && str(p.UserName)) out.push(`${base}user/${p.UserName}`);
  if (types.has('group') && str(p.GroupName)) out.push(`${base}group/${p.GroupName}`);
  if (types.has('instance-profile') && str(p.InstanceProfileName)) out.push(`${base}instance-profile/${p.InstanceProfileName}`);
  if (types.has('policy') && str(p.PolicyArn)) out.push(given(c, p.PolicyArn as string));
  for (const k of ['OpenIDConnectProviderArn', 'SAMLProviderArn', 'ServerCertificateArn']) if (str(p[k])) out.push(given(c, p[k] as string));
  if (types.has('mfa') && str(p.SerialNumber)) out.push(given(c, p.SerialNumber as string));
  return out;
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

function ec2(action: string, p: P, c: ArnContext): string[] {
  const types = new Set(actionResourceTypes(action));
  const out: string[] = [];
  for (const [type, members, withAccount] of EC2_ID_PARAMS) {
    if (!types.has(type)) continue;
    for (const m of members)
      for (const id of strs(p[m])) out.push(`arn:${c.partition}:ec2:${c.region}:${withAccount ? c.account : ''}:${type}/${id}`);
  }
  return out;
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

function rds(action: string, p: P, c: ArnContext): string[] {
  const types = new Set(actionResourceTypes(action));
  const out: string[] = [];
  for (const [type, member] of RDS_ID_PARAMS) {
    const v = str(p[member]);
    if (!v || !types.has(type)) continue;
    out.push(v.startsWith('arn:') ? given(c, v) : `arn:${c.partition}:rds:${c.region}:${c.account}:${type}:${v}`);
  }
  if (str(p.ResourceName) && parseArn(p.ResourceName)) out.push(given(c, p.ResourceName as string));
  return out;
}

function secretsmanager(action: string, p: P, c: ArnContext): string[] {
  if (!actionResourceTypes(action).includes('Secret')) return [];
  const v = str(p.SecretId) ?? str(p.Name);
  if (!v) return [];
  // Secret ARNs end in a 6-character random suffix the caller does not know from a name.
  return [v.startsWith('arn:') ? given(c, v) : `arn:${c.partition}:secretsmanager:${c.region}:${c.account}:secret:${v}-??????`];
}

function ssm(action: string, p: P, c: ArnContext): string[] {
  const types = new Set(actionResourceTypes(action));
  const out: string[] = [];
  const param = (n: string) =>
    n.startsWith('arn:') ? given(c, n) : `arn:${c.partition}:ssm:${c.region}:${c.account}:parameter/${n.replace(/^\/+/, '')}`;
  if (types.has('parameter')) {
    for (const n of [...strs(p.Name), ...strs(p.Names)]) out.push(param(n));
    if (str(p.Path)) out.push(param((p.Path as string).replace(/\/+$/, '') || '/'));
  }
  if (types.has('document') && str(p.DocumentName)) {
    const d = p.DocumentName as string;
    // AWS-owned documents (AWS-*) live in no account (reference §4.2).
    out.push(d.startsWith('arn:') ? given(c, d) : `arn:${c.partition}:ssm:${c.region}:${/^(AWS|Amazon)/.test(d) ? '' : c.account}:document/${d}`);
  }
  // start-session without --document-name opens the default shell document (ssm StartSession API reference).
  if (action === 'ssm:StartSession' && !str(p.DocumentName)) out.push(`arn:${c.partition}:ssm:${c.region}:${c.account}:document/SSM-SessionManagerRunShell`);
  if (types.has('instance') || types.has('managed-instance')) {
    for (const id of [...strs(p.InstanceIds), ...strs(p.InstanceId), ...strs(p.Target)]) {
      out.push(id.startsWith('mi-') ? `arn:${c.partition}:ssm:${c.region}:${c.account}:managed-instance/${id}` : `arn:${c.partition}:ec2:${c.region}:${c.account}:instance/${id}`);
    }
  }
  return out;
}

function sqsUrl(c: ArnContext, url: string): string | undefined {
  const m = /^https?:\/\/(?:sqs\.([\w-]+)\.amazonaws\.com(?:\.cn)?|([\w-]+)\.queue\.amazonaws\.com|queue\.amazonaws\.com)\/(\d{12})\/([\w.-]+)\/?$/.exec(url);
  if (!m) return undefined;
  const region = m[1] ?? m[2] ?? 'us-east-1';
  noteAccount(c, m[3]!);
  return `arn:${partitionOf(region)}:sqs:${region}:${m[3]}:${m[4]}`;
}

function sqs(action: string, p: P, c: ArnContext): string[] {
  if (!actionResourceTypes(action).includes('queue')) return [];
  if (str(p.QueueUrl)) {
    const a = sqsUrl(c, p.QueueUrl as string);
    return a ? [a] : [];
  }
  if (str(p.QueueName)) {
    const acct = str(p.QueueOwnerAWSAccountId) ?? c.account;
    noteAccount(c, acct);
    return [`arn:${c.partition}:sqs:${c.region}:${acct}:${p.QueueName}`];
  }
  return [];
}

function sns(action: string, p: P, c: ArnContext): string[] {
  const out: string[] = [];
  for (const k of ['TopicArn', 'TargetArn', 'PlatformApplicationArn', 'ResourceArn']) if (str(p[k]) && parseArn(p[k])) out.push(given(c, p[k] as string));
  if (str(p.SubscriptionArn) && parseArn(p.SubscriptionArn)) out.push(given(c, (p.SubscriptionArn as string).replace(/:[^:]+$/, '')));
  if (!out.length && str(p.Name) && actionResourceTypes(action).includes('topic')) out.push(`arn:${c.partition}:sns:${c.region}:${c.account}:${p.Name}`);
  return out;
}

function kmsKey(c: ArnContext, v: string | undefined): string {
  const any = `arn:${c.partition}:kms:${c.region}:${c.account}:key/*`;
  if (!v) return any;
  const a = parseArn(v);
  if (a) {
    noteAccount(c, a.account);
    // An alias ARN names no key: the key behind it needs a lookup (reference §4.2).
    return a.resource.startsWith('alias/') ? `arn:${a.partition}:kms:${a.region}:${a.account}:key/*` : v;
  }
  if (v.startsWith('alias/')) return any;
  return `arn:${c.partition}:kms:${c.region}:${c.account}:key/${v}`;
}

function kms(action: string, p: P, c: ArnContext): string[] {
  const types = new Set(actionResourceTypes(action));
  const out: string[] = [];
  if (types.has('alias') && str(p.AliasName)) out.push(`arn:${c.partition}:kms:${c.region}:${c.account}:${p.AliasName}`);
  if (types.has('key')) {
    if (action === 'kms:ReEncryptTo') out.push(kmsKey(c, str(p.DestinationKeyId)));
    else if (action === 'kms:ReEncryptFrom') out.push(kmsKey(c, str(p.SourceKeyId)));
    else out.push(kmsKey(c, str(p.KeyId) ?? str(p.TargetKeyId)));
  }
  return out;
}

function logs(action: string, p: P, c: ArnContext): string[] {
  const types = new Set(actionResourceTypes(action));
  const g = str(p.logGroupName) ?? str(p.logGroupIdentifier);
  const out: string[] = [];
  if (g && (types.has('log-group') || types.has('log-stream'))) {
    out.push(g.startsWith('arn:') ? given(c, g) : `arn:${c.partition}:logs:${c.region}:${c.account}:log-group:${g}:*`);
  }
  for (const id of strs(p.logGroupIdentifiers)) out.push(id.startsWith('arn:') ? given(c, id) : `arn:${c.partition}:logs:${c.region}:${c.account}:log-group:${id}:*`);
  if (str(p.destinationName) && types.has('destination')) out.push(`arn:${c.partition}:logs:${c.region}:${c.account}:destination:${p.destinationName}`);
  return out;
}

function cloudformation(action: string, p: P, c: ArnContext): string[] {
  const types = new Set(actionResourceTypes(action));
  const out: string[] = [];
  const s = str(p.StackName);
  if (s && types.has('stack')) out.push(s.startsWith('arn:') ? given(c, s) : `arn:${c.partition}:cloudformation:${c.region}:${c.account}:stack/${s}/*`);
  const ss = str(p.StackSetName);
  if (ss && types.has('stackset')) out.push(ss.startsWith('arn:') ? given(c, ss) : `arn:${c.partition}:cloudformation:${c.region}:${c.account}:stackset/${ss}:*`);
  const cs = str(p.ChangeSetName);
  if (cs && cs.startsWith('arn:') && types.has('changeset')) out.push(given(c, cs));
  return out;
}

function ecr(action: string, p: P, c: ArnContext): string[] {
  if (!actionResourceTypes(action).includes('repository') || !str(p.repositoryName)) return [];
  const acct = str(p.registryId) ?? c.account;
  noteAccount(c, acct);
  return [`arn:${c.partition}:ecr:${c.region}:${acct}:repository/${p.repositoryName}`];
}

function sts(action: string, p: P, c: ArnContext): string[] {
  if (str(p.RoleArn)) return [given(c, p.RoleArn as string)];
  if (action === 'sts:GetFederationToken' && str(p.Name)) return [`arn:${c.partition}:sts::${c.account}:federated-user/${p.Name}`];
  return [];
}

function dynamodb(action: string, p: P, c: ArnContext): string[] {
  const types = new Set(actionResourceTypes(action));
  const table = (t: string) => (t.startsWith('arn:') ? given(c, t) : `arn:${c.partition}:dynamodb:${c.region}:${c.account}:table/${t}`);
  const out: string[] = [];
  const t = str(p.TableName);
  if (t && types.has('table')) out.push(table(t));
  if (t && str(p.IndexName) && types.has('index')) out.push(`${table(t)}/index/${p.IndexName}`);
  if (p.RequestItems && typeof p.RequestItems === 'object') for (const k of Object.keys(p.RequestItems)) out.push(table(k));
  for (const k of ['StreamArn', 'BackupArn', 'ResourceArn']) if (str(p[k]) && parseArn(p[k])) out.push(given(c, p[k] as string));
  return out;
}

function bedrock(_action: string, p: P, c: ArnContext): string[] {
  const m = str(p.modelId) ?? str(p.modelIdentifier);
  if (!m) return [];
  if (m.startsWith('arn:')) return [given(c, m)];
  return [`arn:${c.partition}:bedrock:${c.region}::foundation-model/${m}`];
}

const HANDLERS: Record<string, (action: string, p: P, c: ArnContext) => string[]> = {
  s3,
  lambda,
  iam,
  ec2,
  rds,
  secretsmanager,
  ssm,
  sqs,
  sns,
  kms,
  logs,
  cloudformation,
  ecr,
  sts,
  dynamodb,
  bedrock,
};

/**
 * Other services: fill the action's SAR ARN templates from parameters with the same name as the template
 * variable (case-insensitive), or use ARN parameters of the same service. Anything else: not derived.
 */
function generic(action: string, p: P, c: ArnContext): string[] {
  const prefix = action.slice(0, action.indexOf(':'));
  const out: string[] = [];
  const lower = new Map<string, unknown>();
  for (const [k, v] of Object.entries(p)) lower.set(k.toLowerCase(), v);
  const types = actionResourceTypes(action).filter((t) => arnTemplate(prefix, t));
  for (const type of types) {
    const tpl = arnTemplate(prefix, type)!;
    let ok = true;
    const arn = tpl.replace(/\$\{(\w+)\}/g, (_m, v: string) => {
      if (v === 'Partition') return c.partition;
      if (v === 'Region') return c.region;
      if (v === 'Account') return c.account;
      let val = lower.get(v.toLowerCase());
      // `eks describe-cluster --name` fills ${ClusterName}: a bare name/id member names the action's only
      // resource type (never guessed when the action has several).
      if (val === undefined && types.length === 1) {
        if (v.endsWith('Name')) val = lower.get('name');
        else if (v.endsWith('Id')) val = lower.get('id');
      }
      if (typeof val === 'string' && val && !val.startsWith('arn:')) return val;
      ok = false;
      return '';
    });
    if (ok) out.push(arn);
  }
  if (out.length) return out;
  for (const v of Object.values(p)) {
    const a = parseArn(v);
    if (a && a.service === prefix) out.push(given(c, v as string));
  }
  return out;
}

/** ARNs for one action from API parameters; [] when nothing could be derived. */
export function resourcesFor(action: string, params: P, c: ArnContext): string[] {
  const prefix = action.slice(0, action.indexOf(':'));
  const h = HANDLERS[prefix];
  const out = h ? h(action, params, c) : generic(action, params, c);
  return [...new Set(out)];
}
