/**
 * API operation → IAM actions, each paired with ITS resources (the broker's session policy is built from
 * these pairs and must never be wider than needed). Order of rules (reference §2.3):
 *   1. curated exceptions (action-exceptions.ts) and rule families (S3 versions, DynamoDB PartiQL and
 *      transactions, API Gateway HTTP verbs);
 *   2. `<iamPrefix>:<Operation>` when it exists in the Service Authorization Reference;
 *   3. `Batch<X>` → `<iamPrefix>:<X>` (singular) when that exists;
 *   4. otherwise a parse error: an operation whose action is unknown is never allowed.
 * Conditional extras: iam:PassRole for role ARNs passed in parameters, tag-on-create actions.
 */
import { ACTION_EXCEPTIONS, PERMISSIONLESS, S3_VERSION_ACTIONS } from './action-exceptions.js';
import { type ArnContext, parseArn, resourcesFor } from './arns.js';
import { iamLiteralParams } from './iam-literal.js';
import { GuardError } from '../errors.js';
import { actionInfo, arnTemplate, requiredResourceTypes } from './iam-catalog.js';
import type { Permission } from './types.js';
import { parseError } from './values.js';

type P = Record<string, unknown>;

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
  const a = sar(action);
  if (!a) throw parseError(`${where}: IAM action ${action} is not in the Service Authorization Reference`);
  return a;
}

/** DynamoDB PartiQL: the action follows the statement verb (DynamoDB Developer Guide, PartiQL IAM policies). */
function partiql(statement: unknown, where: string): { action: string; table?: string } {
  if (typeof statement !== 'string') throw parseError(`${where}: PartiQL statement missing`);
  const s = statement.trim();
  const verb = /^(\w+)/.exec(s)?.[1]?.toUpperCase();
  const map: Record<string, string> = { SELECT: 'PartiQLSelect', INSERT: 'PartiQLInsert', UPDATE: 'PartiQLUpdate', DELETE: 'PartiQLDelete' };
  if (!verb || !map[verb]) throw parseError(`${where}: unsupported PartiQL statement verb ${JSON.stringify(verb ?? '')}`);
  const t = /\b(?:FROM|INTO|UPDATE)\s+("([^"]+)"|'([^']+)'|([\w.-]+))/i.exec(s);
  const table = t ? (t[2] ?? t[3] ?? t[4]) : undefined;
  return { action: `dynamodb:${map[verb]}`, ...(table ? { table: table.split('.')[0]! } : {}) };
}

/** Actions (without resources) an API operation needs, before conditional extras. */
function baseActions(op: OperationRef, params: P, where: string): { action: string; params: P }[] {
  const key = `${op.service}:${op.api}`;
  // API Gateway management APIs are authorized as the HTTP verb of the route (reference §2.3).
  if ((op.service === 'apigateway' || op.service === 'apigatewayv2') && op.http) {
    return [{ action: must(`apigateway:${op.http[0]}`, where), params }];
  }
  if (op.service === 'dynamodb') {
    if (op.api === 'ExecuteStatement') {
      const q = partiql(params.Statement, where);
      return [{ action: must(q.action, where), params: q.table ? { TableName: q.table } : {} }];
    }
    if (op.api === 'BatchExecuteStatement' || op.api === 'ExecuteTransaction') {
      const items = (op.api === 'BatchExecuteStatement' ? params.Statements : params.TransactStatements) as P[] | undefined;
      if (!Array.isArray(items) || !items.length) throw parseError(`${where}: no PartiQL statements`);
      return items.map((it) => {
        const q = partiql(it && typeof it === 'object' ? it.Statement : undefined, where);
        return { action: must(q.action, where), params: q.table ? { TableName: q.table } : {} };
      });
    }
    if (op.api === 'TransactWriteItems') {
      const items = params.TransactItems as P[] | undefined;
      if (!Array.isArray(items) || !items.length) throw parseError(`${where}: no TransactItems`);
      const kinds: Record<string, string> = { ConditionCheck: 'ConditionCheckItem', Put: 'PutItem', Update: 'UpdateItem', Delete: 'DeleteItem' };
      const out: { action: string; params: P }[] = [];
      for (const it of items) {
        if (!it || typeof it !== 'object') continue;
        for (const [k, v] of Object.entries(it)) if (kinds[k]) out.push({ action: `dynamodb:${kinds[k]}`, params: (v && typeof v === 'object' ? v : {}) as P });
      }
      return out;
    }
    if (op.api === 'TransactGetItems') {
      const items = params.TransactItems as P[] | undefined;
      return (Array.isArray(items) ? items : [{}]).map((it) => ({ action: 'dynamodb:GetItem', params: ((it as P)?.Get ?? {}) as P }));
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
    const extra: { action: string; params: P }[] = [];
    if (op.service === 's3' && op.api === 'PutObject') {
      if (params.ACL || params.GrantRead || params.GrantFullControl || params.GrantReadACP || params.GrantWriteACP) extra.push({ action: 's3:PutObjectAcl', params });
      if (params.Tagging) extra.push({ action: 's3:PutObjectTagging', params });
    }
    return [{ action, params }, ...extra];
  }
  const batch = /^Batch(\w+?)s?$/.exec(op.api);
  if (batch) {
    for (const cand of [`${op.prefix}:${batch[1]}`, `${op.prefix}:${batch[1]}s`]) {
      const a = sar(cand);
      if (a) return [{ action: a, params }];
    }
  }
  throw parseError(`${where}: no IAM action is known for ${op.service} ${op.api} (no ${op.prefix}:${op.api} in the Service Authorization Reference)`, {
    reason: 'unmapped',
  });
}

function s3Copy(params: P): { action: string; params: P }[] {
  const src = typeof params.CopySource === 'string' ? params.CopySource : undefined;
  let srcParams: P = {};
  if (src) {
    const s = decodeURIComponent(src.replace(/^\//, '').split('?')[0]!);
    const i = s.indexOf('/');
    srcParams = i > 0 ? { Bucket: s.slice(0, i), Key: s.slice(i + 1) } : { Bucket: s };
    if (/[?&]versionId=/.test(src)) srcParams.VersionId = 'given';
  }
  const out: { action: string; params: P }[] = [
    { action: srcParams.VersionId ? 's3:GetObjectVersion' : 's3:GetObject', params: srcParams },
    { action: 's3:PutObject', params },
  ];
  if (params.ACL || params.GrantRead || params.GrantFullControl) out.push({ action: 's3:PutObjectAcl', params });
  if (params.TaggingDirective === 'REPLACE' && params.Tagging) out.push({ action: 's3:PutObjectTagging', params });
  return out;
}

// Members naming a role that the service will assume → iam:PassRole on that role (reference §2.3).
const ROLE_MEMBER = /role(arn)?$/i;

function passRoles(op: OperationRef, params: P, c: ArnContext): string[] {
  if (op.service === 'sts' || op.service === 'iam') return [];
  const roles: string[] = [];
  const visit = (v: unknown, key: string, depth: number) => {
    if (depth > 6) return;
    if (typeof v === 'string') {
      const a = parseArn(v);
      if (ROLE_MEMBER.test(key) && a && a.service === 'iam' && a.resource.startsWith('role/')) roles.push(v);
    } else if (Array.isArray(v)) v.forEach((x) => visit(x, key, depth + 1));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) visit(x, k, depth + 1);
  };
  for (const [k, v] of Object.entries(params)) visit(v, k, 0);
  // An instance profile passes its role; which role needs a lookup, so any role of the account
  // (reference §2.3: IamInstanceProfile → role/* with iam:PassedToService).
  if (params.IamInstanceProfile !== undefined || params.InstanceProfileArn !== undefined || params.InstanceProfileName !== undefined) {
    roles.push(`arn:${c.partition}:iam::${c.account}:role/*`);
  }
  for (const r of roles) {
    const a = parseArn(r)!;
    if (a.account && a.account !== c.account) c.foreignAccounts.add(a.account);
  }
  return [...new Set(roles)];
}

/** Tag-on-create: tags in a create call need the tagging action too (SAR condition keys aws:RequestTag). */
function tagOnCreate(op: OperationRef, params: P): string | undefined {
  if (!/^(Create|Run|Allocate|Copy|Import|Request|Register|Restore|Put)/.test(op.api)) return undefined;
  const has = (k: string) => params[k] !== undefined && !(Array.isArray(params[k]) && (params[k] as unknown[]).length === 0);
  if (op.service === 'ec2' && has('TagSpecifications')) return 'ec2:CreateTags';
  if ((op.service === 'rds' || op.service === 'docdb' || op.service === 'neptune') && has('Tags')) return 'rds:AddTagsToResource';
  if (op.service === 'sqs' && op.api === 'CreateQueue' && has('tags')) return 'sqs:TagQueue';
  return undefined;
}

function merge(perms: Permission[]): Permission[] {
  const by = new Map<string, Permission>();
  for (const p of perms) {
    const cur = by.get(p.action);
    if (!cur) {
      by.set(p.action, { ...p, resources: [...p.resources] });
      continue;
    }
    if (cur.resources.includes('*') || p.resources.includes('*')) {
      cur.resources = ['*'];
      cur.derived = false;
    } else {
      cur.resources = [...new Set([...cur.resources, ...p.resources])].sort();
    }
  }
  return [...by.values()];
}

/** Parameter names that identify a resource (botocore members): an empty one is never a real call. */
const IDENTIFYING = /(Name|Id|Arn|ARN|Key|Bucket|Url|URL|Identifier|Path)$/;

/** Resources for an action from its own parameters; `*` (derived=false) when nothing can be derived. */
export function permission(action: string, params: P, c: ArnContext, op?: OperationRef): Permission {
  // ARNs are built from the caller's values written literally (iam-literal.ts): a key named `*` is that key.
  const lit = iamLiteralParams(params);
  // API Gateway management calls are authorized on the request path (arn:aws:apigateway:REGION::/restapis/…).
  const arns = op?.http && action.startsWith('apigateway:') ? [apigatewayArn(op.http[1], lit, c)] : resourcesFor(action, lit, c);
  if (!arns.length) {
    // An empty identifier (`--key ""`) would leave the action on `*`: the call cannot be meant, refuse it.
    const empty = Object.entries(params).find(([k, v]) => v === '' && IDENTIFYING.test(k));
    if (empty) throw new GuardError('parse', `${empty[0]}: an empty value cannot identify a resource`, { details: { parameter: empty[0] } });
    return { action, resources: ['*'], derived: false };
  }
  return { action, resources: [...arns, ...requiredWildcards(action, arns, c)].sort(), derived: true };
}

/**
 * A partly derived action (ec2:RunInstances on an image) still touches every resource type SAR marks as
 * required (instance, network-interface, volume…): those get account-scoped wildcards from their ARN
 * templates, so the session policy is sufficient but no wider than the account.
 */
const templateRegex = new Map<string, RegExp>();
function requiredWildcards(action: string, arns: string[], c: ArnContext): string[] {
  const prefix = action.slice(0, action.indexOf(':'));
  const out: string[] = [];
  // SAR's "required" means "all of these" for EC2's multi-resource calls but "one of these" elsewhere
  // (bedrock:InvokeModel lists every model kind): only EC2 is completed this way.
  if (prefix !== 'ec2') return out;
  for (const type of requiredResourceTypes(action)) {
    const tpl = arnTemplate(prefix, type);
    if (!tpl) continue;
    let re = templateRegex.get(tpl);
    if (!re) {
      re = new RegExp(
        `^${tpl
          .split(/\$\{\w+\}/)
          .map((part) => part.replace(/[.*+?^$()|[\]\\{}]/g, '\\$&'))
          .join('.*')}$`,
      );
      templateRegex.set(tpl, re);
    }
    if (arns.some((a) => re.test(a))) continue;
    out.push(
      tpl.replace(/\$\{(\w+)\}/g, (_m, v: string) => (v === 'Partition' ? c.partition : v === 'Region' ? c.region : v === 'Account' ? c.account : '*')),
    );
  }
  return out;
}

function apigatewayArn(uri: string, params: P, c: ArnContext): string {
  const lower = new Map<string, unknown>();
  for (const [k, v] of Object.entries(params)) lower.set(k.toLowerCase(), v);
  const path = uri.split('?')[0]!.replace(/\{([\w+]+?)\+?\}/g, (_m, name: string) => {
    const v = lower.get(name.replace(/_/g, '').toLowerCase());
    return typeof v === 'string' || typeof v === 'number' ? String(v) : '*';
  });
  return `arn:${c.partition}:apigateway:${c.region}::${path}`;
}

/** Permissions for one API operation with its decoded parameters. */
export function operationPermissions(op: OperationRef, params: P, c: ArnContext, where: string): Permission[] {
  if (PERMISSIONLESS.has(`${op.prefix}:${op.api}`)) {
    return [{ action: must(`${op.prefix}:${op.api}`, where), resources: ['*'], derived: false }];
  }
  const base = baseActions(op, params, where);
  // Parameters that name no action (e.g. TransactItems without Put/Update/Delete/ConditionCheck) are not
  // understood: refused rather than returning a call with no permission to check.
  if (!base.length) throw parseError(`${where}: cannot tell which IAM actions ${op.service} ${op.api} needs from these parameters`);
  const perms = base.map((b) => permission(b.action, b.params, c, op));
  const tag = tagOnCreate(op, params);
  if (tag && sar(tag)) perms.push(permission(must(tag, where), params, c));
  const roles = passRoles(op, params, c);
  if (roles.length) perms.push({ action: 'iam:PassRole', resources: roles.sort(), derived: true });
  return merge(perms);
}

export { merge as mergePermissions };
