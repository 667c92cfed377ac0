/**
 * API operation → IAM actions, each paired with ITS resources (the broker's session policy is built from
 * these pairs and must never be wider than needed). Order of rules (docs/aws-cli-parsing.md §3.3):
 *   1. curated exceptions (action-exceptions.ts) and rule families (S3 versions, DynamoDB PartiQL and
 *      transactions, API Gateway HTTP verbs);
 *   2. `<iamPrefix>:<Operation>` when it exists in the Service Authorization Reference;
 *   3. `Batch<X>` → `<iamPrefix>:<X>` (singular) when that exists;
 *   4. otherwise a parse error: an operation whose action is unknown is never allowed.
 * Conditional extras: iam:PassRole for role ARNs passed in parameters, tag-on-create actions.
 */
import { ACTION_EXCEPTIONS, PERMISSIONLESS, S3_VERSION_ACTIONS } from './action-exceptions.js';
import { type ArnContext, parseArn, resourcesFor, templateRegex, typeWildcard, unreadable } from './arns.js';
import { iamLiteral, iamLiteralParams } from './iam-literal.js';
import { GuardError } from '../errors.js';
import { accountFieldAllowed, actionInfo, arnTemplate, requiredResourceTypes } from './iam-catalog.js';
import type { Permission } from './types.js';
import { parseError } from './values.js';

/** API parameters by member name, as decoded from the argv. */
type ApiParams = Record<string, unknown>;

export interface OperationRef {
  /** botocore service name (`s3`, `codedeploy`). */
  service: string;
  /** IAM prefix (SAR) or null when the service has none. */
  prefix: string | null;
  /** API operation name. */
  api: string;
  /** API Gateway: [method, requestUri]. */
  http?: [string, string];
}

function sar(action: string): string | undefined {
  return actionInfo(action)?.action;
}

function must(action: string, where: string): string {
  const sarAction = sar(action);
  if (!sarAction) throw parseError(`${where}: IAM action ${action} is not in the Service Authorization Reference`);
  return sarAction;
}

/** DynamoDB PartiQL: the action follows the statement verb (DynamoDB Developer Guide, PartiQL IAM policies). */
function partiql(statement: unknown, where: string): { action: string; table?: string } {
  if (typeof statement !== 'string') throw parseError(`${where}: PartiQL statement missing`);
  const text = statement.trim();
  const verb = /^(\w+)/.exec(text)?.[1]?.toUpperCase();
  const actionByVerb: Record<string, string> = { SELECT: 'PartiQLSelect', INSERT: 'PartiQLInsert', UPDATE: 'PartiQLUpdate', DELETE: 'PartiQLDelete' };
  if (!verb || !actionByVerb[verb]) throw parseError(`${where}: unsupported PartiQL statement verb ${JSON.stringify(verb ?? '')}`);
  const target = /\b(?:FROM|INTO|UPDATE)\s+("([^"]+)"|'([^']+)'|([\w.-]+))/i.exec(text);
  const table = target ? (target[2] ?? target[3] ?? target[4]) : undefined;
  return { action: `dynamodb:${actionByVerb[verb]}`, ...(table ? { table: table.split('.')[0]! } : {}) };
}

/** Actions (without resources) an API operation needs, before conditional extras. */
function baseActions(op: OperationRef, params: ApiParams, where: string): { action: string; params: ApiParams }[] {
  const key = `${op.service}:${op.api}`;
  // API Gateway management APIs are authorized as the HTTP verb of the route (docs/aws-cli-parsing.md §3.3), except
  // the newer ones SAR lists by operation name (portals, portal products and pages, routing rules: "Actions defined
  // by Amazon API Gateway Management V2", e.g. apigateway:CreatePortal on `…:/portals/${PortalId}`).
  if ((op.service === 'apigateway' || op.service === 'apigatewayv2') && op.http) {
    const named = sar(`apigateway:${op.api}`);
    if (named) return [{ action: named, params }];
    return [{ action: must(`apigateway:${op.http[0]}`, where), params }];
  }
  if (op.service === 'dynamodb') {
    if (op.api === 'ExecuteStatement') {
      const statement = partiql(params.Statement, where);
      return [{ action: must(statement.action, where), params: statement.table ? { TableName: statement.table } : {} }];
    }
    if (op.api === 'BatchExecuteStatement' || op.api === 'ExecuteTransaction') {
      const items = (op.api === 'BatchExecuteStatement' ? params.Statements : params.TransactStatements) as ApiParams[] | undefined;
      if (!Array.isArray(items) || !items.length) throw parseError(`${where}: no PartiQL statements`);
      return items.map((item) => {
        const statement = partiql(item && typeof item === 'object' ? item.Statement : undefined, where);
        return { action: must(statement.action, where), params: statement.table ? { TableName: statement.table } : {} };
      });
    }
    if (op.api === 'TransactWriteItems') {
      const items = params.TransactItems as ApiParams[] | undefined;
      if (!Array.isArray(items) || !items.length) throw parseError(`${where}: no TransactItems`);
      const kinds: Record<string, string> = { ConditionCheck: 'ConditionCheckItem', Put: 'PutItem', Update: 'UpdateItem', Delete: 'DeleteItem' };
      const out: { action: string; params: ApiParams }[] = [];
      for (const item of items) {
        if (!item || typeof item !== 'object') continue;
        for (const [kind, request] of Object.entries(item)) if (kinds[kind]) out.push({ action: `dynamodb:${kinds[kind]}`, params: (request && typeof request === 'object' ? request : {}) as ApiParams });
      }
      return out;
    }
    if (op.api === 'TransactGetItems') {
      const items = params.TransactItems as ApiParams[] | undefined;
      return (Array.isArray(items) ? items : [{}]).map((item) => ({ action: 'dynamodb:GetItem', params: ((item as ApiParams)?.Get ?? {}) as ApiParams }));
    }
  }
  if (op.service === 's3' && op.api === 'CopyObject') return s3Copy(params);
  if (op.service === 's3' && op.api === 'UploadPartCopy') return [...s3Copy(params)];
  const curated = ACTION_EXCEPTIONS[key];
  if (curated) return curated.map((a) => ({ action: must(a, where), params }));
  if (!op.prefix) throw parseError(`${where}: service ${op.service} has no IAM prefix in the Service Authorization Reference`);
  const direct = sar(`${op.prefix}:${op.api}`);
  if (direct) {
    let action = direct;
    if (op.service === 's3' && typeof params.VersionId === 'string' && S3_VERSION_ACTIONS[direct]) action = S3_VERSION_ACTIONS[direct]!;
    const extra: { action: string; params: ApiParams }[] = [];
    if (op.service === 's3' && op.api === 'PutObject') {
      if (params.ACL || params.GrantRead || params.GrantFullControl || params.GrantReadACP || params.GrantWriteACP) extra.push({ action: 's3:PutObjectAcl', params });
      if (params.Tagging) extra.push({ action: 's3:PutObjectTagging', params });
    }
    return [{ action, params }, ...extra];
  }
  const batch = /^Batch(\w+?)s?$/.exec(op.api);
  if (batch) {
    for (const candidate of [`${op.prefix}:${batch[1]}`, `${op.prefix}:${batch[1]}s`]) {
      const action = sar(candidate);
      if (action) return [{ action, params }];
    }
  }
  throw parseError(`${where}: no IAM action is known for ${op.service} ${op.api} (no ${op.prefix}:${op.api} in the Service Authorization Reference)`, {
    reason: 'unmapped',
  });
}

/** CopyObject / UploadPartCopy: read the source (`bucket/key[?versionId=…]`), write the destination. */
function s3Copy(params: ApiParams): { action: string; params: ApiParams }[] {
  const copySource = typeof params.CopySource === 'string' ? params.CopySource : undefined;
  let srcParams: ApiParams = {};
  if (copySource) {
    const source = decodeURIComponent(copySource.replace(/^\//, '').split('?')[0]!);
    const slash = source.indexOf('/');
    srcParams = slash > 0 ? { Bucket: source.slice(0, slash), Key: source.slice(slash + 1) } : { Bucket: source };
    if (/[?&]versionId=/.test(copySource)) srcParams.VersionId = 'given';
  }
  const out: { action: string; params: ApiParams }[] = [
    { action: srcParams.VersionId ? 's3:GetObjectVersion' : 's3:GetObject', params: srcParams },
    { action: 's3:PutObject', params },
  ];
  if (params.ACL || params.GrantRead || params.GrantFullControl) out.push({ action: 's3:PutObjectAcl', params });
  if (params.TaggingDirective === 'REPLACE' && params.Tagging) out.push({ action: 's3:PutObjectTagging', params });
  return out;
}

// Members naming a role that the service will assume → iam:PassRole on that role (docs/aws-cli-parsing.md §3.3).
// EC2 flow logs name their delivery role `DeliverLogsPermissionArn` (EC2 API Reference, CreateFlowLogs).
const ROLE_MEMBER = /(role(arn)?|DeliverLogsPermissionArn)$/i;

function passRoles(op: OperationRef, params: ApiParams, ctx: ArnContext): string[] {
  if (op.service === 'sts' || op.service === 'iam') return [];
  const roles: string[] = [];
  const visit = (value: unknown, member: string, depth: number) => {
    if (depth > 6) return;
    if (typeof value === 'string') {
      const arn = parseArn(value);
      if (ROLE_MEMBER.test(member) && arn && arn.service === 'iam' && arn.resource.startsWith('role/')) {
        // The role ARN goes into the policy as written: a `*` or `?` in it would let the session pass any matching
        // role (an administrator's) to the service. No API takes a wildcard role, so it is refused.
        if (iamLiteral(value) !== value) throw unreadable(member, iamLiteral(value), 'the ARN of one IAM role');
        roles.push(value);
      }
    } else if (Array.isArray(value)) value.forEach((element) => visit(element, member, depth + 1));
    else if (value && typeof value === 'object') for (const [child, childValue] of Object.entries(value)) visit(childValue, child, depth + 1);
  };
  for (const [member, value] of Object.entries(params)) visit(value, member, 0);
  // An instance profile passes its role; which role needs a lookup, so any role of the account
  // (docs/aws-cli-parsing.md §3.3: IamInstanceProfile → role/* with iam:PassedToService).
  if (params.IamInstanceProfile !== undefined || params.InstanceProfileArn !== undefined || params.InstanceProfileName !== undefined) {
    roles.push(`arn:${ctx.partition}:iam::${ctx.account}:role/*`);
  }
  for (const role of roles) {
    const arn = parseArn(role)!;
    if (arn.account && arn.account !== ctx.account) ctx.foreignAccounts.add(arn.account);
  }
  return [...new Set(roles)];
}

/**
 * Permissions AWS checks besides the operation's own action (docs/aws-cli-parsing.md §3.3, "Companion
 * permissions"), each from the operation's API reference:
 *  - `iam add-role-to-instance-profile`: "The caller of this operation must be granted the PassRole permission on
 *    the IAM role" (IAM API Reference, AddRoleToInstanceProfile) — the role joins whatever instance uses the profile;
 *  - `kms replicate-key`: kms:CreateKey too, evaluated in the replica Region (AWS KMS API Reference, ReplicateKey,
 *    "Required permissions"); CreateKey has no resource type, so `*`;
 *  - `ec2 create-flow-logs` to S3 or Firehose: logs:CreateLogDelivery (Amazon VPC User Guide, "IAM permissions
 *    for publishing flow logs to Amazon S3 / Firehose"), which has no resource type;
 *  - `ecs run-task`, `start-task`, `create-service`: the task definition's task and execution roles are passed
 *    to ECS (Amazon ECS Developer Guide, "Task IAM role": iam:PassRole). Which roles needs a lookup of the task
 *    definition, so every role of the account, as for instance profiles (`passRoles`).
 */
function companions(op: OperationRef, params: ApiParams, ctx: ArnContext, where: string): Permission[] {
  const out: Permission[] = [];
  const key = `${op.service}:${op.api}`;
  const roleBase = `arn:${ctx.partition}:iam::${ctx.account}:role/`;
  if (key === 'iam:AddRoleToInstanceProfile' && typeof params.RoleName === 'string' && params.RoleName) {
    out.push({ action: 'iam:PassRole', resources: [`${roleBase}${iamLiteral(params.RoleName)}`], derived: true });
  }
  if (key === 'kms:ReplicateKey') {
    const replica = typeof params.ReplicaRegion === 'string' && /^[a-z]{2}(-[a-z]+)+-\d+$/.test(params.ReplicaRegion) ? params.ReplicaRegion : undefined;
    out.push({ action: must('kms:CreateKey', where), resources: ['*'], derived: false, ...(replica ? { region: replica } : {}) });
  }
  if (key === 'ec2:CreateFlowLogs' && typeof params.LogDestinationType === 'string' && params.LogDestinationType !== 'cloud-watch-logs') {
    out.push({ action: must('logs:CreateLogDelivery', where), resources: ['*'], derived: false });
  }
  if (op.service === 'ecs' && (op.api === 'RunTask' || op.api === 'StartTask' || op.api === 'CreateService')) {
    out.push({ action: 'iam:PassRole', resources: [`${roleBase}*`], derived: true });
  }
  return out;
}

/** Tag-on-create: tags in a create call need the tagging action too (SAR condition keys aws:RequestTag). */
function tagOnCreate(op: OperationRef, params: ApiParams): string | undefined {
  if (!/^(Create|Run|Allocate|Copy|Import|Request|Register|Restore|Put)/.test(op.api)) return undefined;
  const has = (member: string) => params[member] !== undefined && !(Array.isArray(params[member]) && (params[member] as unknown[]).length === 0);
  if (op.service === 'ec2' && has('TagSpecifications')) return 'ec2:CreateTags';
  if ((op.service === 'rds' || op.service === 'docdb' || op.service === 'neptune') && has('Tags')) return 'rds:AddTagsToResource';
  if (op.service === 'sqs' && op.api === 'CreateQueue' && has('tags')) return 'sqs:TagQueue';
  return undefined;
}

/** One permission per action: resources united, `*` absorbing everything else. */
function merge(permissions: Permission[]): Permission[] {
  const byAction = new Map<string, Permission>();
  for (const permission of permissions) {
    const merged = byAction.get(permission.action);
    if (!merged) {
      byAction.set(permission.action, { ...permission, resources: [...permission.resources] });
      continue;
    }
    if (merged.resources.includes('*') || permission.resources.includes('*')) {
      merged.resources = ['*'];
      merged.derived = false;
    } else {
      merged.resources = [...new Set([...merged.resources, ...permission.resources])].sort();
      // Any underived part (a write's account-wide pattern) makes the whole permission underived.
      merged.derived = merged.derived && permission.derived;
    }
  }
  return [...byAction.values()];
}

/** Parameter names that identify a resource (botocore members): an empty one is never a real call. */
const IDENTIFYING = /(Name|Id|Arn|ARN|Key|Bucket|Url|URL|Identifier|Path)$/;

/**
 * Resources for an action from its own parameters. When the request names none (docs/aws-cli-parsing.md §5.3):
 *  - an action without required resource types stays on `*` (derived=false) — IAM needs `*` for an action without
 *    any, and a list or describe without identifiers acts on the account's resources as a whole;
 *  - an action whose SAR entry has required resource types gets each type's ARN pattern in the target account and
 *    region (`…:elasticloadbalancing:REGION:ACCOUNT:loadbalancer/` then `*`), still derived=false: narrower than
 *    `*`, but any such resource; for a write risks.ts marks the call `any_resource` and the approver is told so.
 * Every ARN is checked to have a readable partition, region and account: a wildcard there is refused.
 */
export function permission(action: string, params: ApiParams, ctx: ArnContext, op?: OperationRef): Permission {
  // ARNs are built from the caller's values written literally (iam-literal.ts): a key named `*` is that key.
  const literal = iamLiteralParams(params);
  // An ARN of the action's own service naming its resource (`--topic-arn arn:aws:sns:*:…`) that holds a wildcard
  // anywhere: no API takes one, and the handlers would not recognise it as an ARN at all (a wildcard region).
  const prefix = action.slice(0, action.indexOf(':'));
  for (const [member, value] of Object.entries(literal)) {
    if (/(Arn|ARN)$/.test(member) && typeof value === 'string' && value.startsWith(`arn:`) && value.includes('${') && value.split(':')[2] === prefix) {
      throw unreadable(member, value, `the ARN of one ${prefix} resource`);
    }
  }
  // An empty identifier (`--key ""`) would leave its part of the ARN to a wildcard (`b/*`) or the action on `*`:
  // the call cannot be meant, refuse it.
  const empty = Object.entries(params).find(([member, value]) => value === '' && IDENTIFYING.test(member));
  if (empty) throw new GuardError('parse', `${empty[0]}: an empty value cannot identify a resource`, { details: { parameter: empty[0] } });
  // API Gateway management calls are authorized on the request path (arn:aws:apigateway:REGION::/restapis/…).
  const arns = op?.http && /^apigateway:[A-Z]+$/.test(action) ? [apigatewayArn(op.http[1], literal, ctx, op.service)] : resourcesFor(action, literal, ctx);
  if (!arns.length) {
    // Every call of the action is evaluated on a resource of each required type (SAR), whatever its access level: a
    // read that names none (`athena get-query-execution --query-execution-id Q`: the query's workgroup) gets those
    // types' patterns in the target account rather than `*`, the narrowest the ARN format allows without a lookup.
    // Only writes carry `any_resource` for it (risks.ts); a read on the account's workgroups is what it was on `*`.
    const patterns = requiredResourceTypes(action).flatMap((type) => (arnTemplate(prefix, type) ?? '').split(/,\s*/).filter(Boolean));
    const wildcards = patterns.map((template) => typeWildcard(template, ctx));
    if (wildcards.length && wildcards.every((arn) => arn !== undefined)) return { action, resources: [...new Set(wildcards as string[])].sort(), derived: false };
    return { action, resources: ['*'], derived: false };
  }
  for (const arn of arns) checkArn(arn);
  return { action, resources: [...arns, ...requiredWildcards(action, arns, ctx)].sort(), derived: true };
}

/**
 * An ARN the deriver built must have a plain partition, service, region and account: a caller's `*` that reached
 * one of them (escaped as `${*}` by iam-literal.ts) is refused here, whatever handler built it, instead of
 * failing later in the session policy.
 */
function checkArn(arn: string): void {
  // A control character is refused after derivation, naming the parameter it came from (parse.ts,
  // assertPrintableResource): a clearer message than "not an ARN" for the same refusal.
  if (arn === '*' || /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(arn)) return;
  const parsed = parseArn(arn);
  // The same shape the session policy accepts (src/broker/session-policy.ts): anything else would fail there.
  if (!parsed || !/^aws(-[a-z]+)*$/.test(parsed.partition) || !/^[a-z0-9-]+$/.test(parsed.service) || !/^[a-z0-9-]*$/.test(parsed.region) || !accountFieldAllowed(parsed.service, parsed.account)) {
    throw unreadable('resource', arn, 'an ARN arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE with a plain partition, service and region and a 12-digit account');
  }
}

/**
 * A partly derived action (ec2:RunInstances on an image) still touches every resource type SAR marks as
 * required (instance, network-interface, volume…): those get account-scoped wildcards from their ARN
 * templates, so the session policy is sufficient but no wider than the account.
 */
function requiredWildcards(action: string, arns: string[], ctx: ArnContext): string[] {
  const prefix = action.slice(0, action.indexOf(':'));
  const out: string[] = [];
  // SAR's "required" means "all of these" for EC2's multi-resource calls but "one of these" elsewhere
  // (bedrock:InvokeModel lists every model kind): only EC2 is completed this way.
  if (prefix !== 'ec2') return out;
  for (const type of requiredResourceTypes(action)) {
    const template = arnTemplate(prefix, type);
    if (!template || arns.some((arn) => templateRegex(template).test(arn))) continue;
    const wildcard = typeWildcard(template, ctx);
    if (wildcard) out.push(wildcard);
  }
  return out;
}

/**
 * API Gateway management calls are authorized on the request path (SAR, "Resource types defined by Amazon API
 * Gateway Management": `arn:${Partition}:apigateway:${Region}::/restapis/${RestApiId}`, `…::/apis/${ApiId}`). The
 * HTTP/WebSocket API (apigatewayv2) serves its routes under `/v2/…`, but its resources are named without that
 * prefix (`/v2/apis/{apiId}` is authorized as `/apis/ID`): a `/v2` kept in the ARN would match nothing AWS
 * checks. A resource ARN in the path (`/tags/{resource-arn}`) is URL-encoded, as in SAR's
 * `/tags/${UrlEncodedResourceARN}`.
 */
function apigatewayArn(uri: string, params: ApiParams, ctx: ArnContext, service: string): string {
  const byLowerName = new Map<string, unknown>();
  for (const [member, value] of Object.entries(params)) byLowerName.set(member.toLowerCase(), value);
  let path = uri.split('?')[0]!;
  if (service === 'apigatewayv2') path = path.replace(/^\/v2(?=\/)/, '');
  path = path.replace(/\{([\w+-]+?)\+?\}/g, (_placeholder, name: string) => {
    const value = byLowerName.get(name.replace(/[_-]/g, '').toLowerCase());
    if (typeof value !== 'string' && typeof value !== 'number') return '*';
    if (!/arn$/i.test(name)) return String(value);
    // encodeURIComponent leaves `*` alone: an escaped wildcard in the ARN would become a real one once encoded.
    if (String(value).includes('${')) throw unreadable(name, String(value), 'the ARN of one API Gateway resource');
    return encodeURIComponent(String(value));
  });
  return `arn:${ctx.partition}:apigateway:${ctx.region}::${path}`;
}

/** Permissions for one API operation with its decoded parameters. */
export function operationPermissions(op: OperationRef, params: ApiParams, ctx: ArnContext, where: string): Permission[] {
  if (PERMISSIONLESS.has(`${op.prefix}:${op.api}`)) {
    return [{ action: must(`${op.prefix}:${op.api}`, where), resources: ['*'], derived: false }];
  }
  const base = baseActions(op, params, where);
  // Parameters that name no action (e.g. TransactItems without Put/Update/Delete/ConditionCheck) are not
  // understood: refused rather than returning a call with no permission to check.
  if (!base.length) throw parseError(`${where}: cannot tell which IAM actions ${op.service} ${op.api} needs from these parameters`);
  const perms = base.map((needed) => permission(needed.action, needed.params, ctx, op));
  const tag = tagOnCreate(op, params);
  if (tag && sar(tag)) perms.push(permission(must(tag, where), params, ctx));
  perms.push(...companions(op, params, ctx, where));
  const roles = passRoles(op, params, ctx);
  if (roles.length) perms.push({ action: 'iam:PassRole', resources: roles.sort(), derived: true });
  return merge(perms);
}

export { merge as mergePermissions };
