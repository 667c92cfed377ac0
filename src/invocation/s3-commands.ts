/**
 * `aws s3 ls|cp|mv|rm|sync|mb|rb|presign|website` → the API calls they really make and the actions those need,
 * each paired with its own resources (docs/aws-cli-parsing.md §4.1; awscli/customizations/s3/subcommands.py, calls observed
 * under moto). `s3 cp s3://a/k s3://b/k` is s3:GetObject on a/k and s3:PutObject on b/k — never the product.
 */
import { basename } from 'node:path';
import type { ArnContext } from './arns.js';
import { iamLiteral } from './iam-literal.js';
import type { ParsedArgs } from './grammar.js';
import { permission, mergePermissions } from './actions.js';
import type { LocalFile, Permission, RiskSignal } from './types.js';
import { expandPath, parseError } from './values.js';
import type { InvocationContext } from './types.js';

interface S3Path {
  bucket: string;
  key: string;
}

function s3Path(p: string): S3Path | undefined {
  if (!p.startsWith('s3://')) return undefined;
  const rest = p.slice(5);
  const i = rest.indexOf('/');
  // access-point / Outposts ARNs as "bucket" (split_s3_bucket_key): arn:...:accesspoint/NAME/key
  const ap = /^(arn:[^/]+?:(?:accesspoint|outpost\/[^/]+\/accesspoint)\/[^/]+)\/?(.*)$/.exec(rest);
  if (ap) return { bucket: ap[1]!, key: ap[2] ?? '' };
  return i < 0 ? { bucket: rest, key: '' } : { bucket: rest.slice(0, i), key: rest.slice(i + 1) };
}

export interface S3Result {
  operation: string;
  apiCalls: string[];
  permissions: Permission[];
  risks: RiskSignal[];
  files: LocalFile[];
  params: Record<string, unknown>;
}

// Bucket and key are the caller's: written literally in ARNs (iam-literal.ts); a trailing `*` added for a
// recursive operation is appended after escaping and stays a wildcard.
const obj = (c: ArnContext, b: string, k: string, many = false) => `arn:${c.partition}:s3:::${iamLiteral(b)}/${iamLiteral(k)}${many ? '*' : ''}`;

export function s3Command(sub: string, args: ParsedArgs, c: ArnContext, ctx: InvocationContext, where: string): S3Result {
  const opt = (n: string) => args.options.get(n)?.value;
  const flag = (n: string) => opt(n) === true;
  const paths = args.positionals.flatMap((p) => (Array.isArray(p.value) ? p.value : [p.value]));
  const risks: RiskSignal[] = [];
  const files: LocalFile[] = [];
  const perms: Permission[] = [];
  const apiCalls: string[] = [];
  const recursive = flag('recursive');
  const add = (action: string, resources: string[]) => perms.push({ action, resources, derived: true });
  // An access point / Outposts ARN as the "bucket" names its account: another account's is a cross-account call.
  const noteAccount = (b: string) => {
    const account = b.split(':')[4];
    if (account && /^\d{12}$/.test(account) && account !== c.account) c.foreignAccounts.add(account);
  };
  const bucketArn = (b: string) => (b.startsWith('arn:') ? (noteAccount(b), iamLiteral(b)) : `arn:${c.partition}:s3:::${iamLiteral(b)}`);
  const objArn = (p: S3Path, many: boolean) =>
    p.bucket.startsWith('arn:') ? (noteAccount(p.bucket), `${iamLiteral(p.bucket)}/object/${iamLiteral(p.key)}${many ? '*' : ''}`) : obj(c, p.bucket, p.key, many);
  const localFile = (p: string, mode: 'read' | 'write', i: number) => {
    if (p === '-') return;
    files.push({ path: expandPath(p, ctx, where), mode, argument: `paths[${i}]` });
    risks.push(mode === 'read' ? 'local_file_read' : 'local_file_write');
  };
  let operation = '';
  const params: Record<string, unknown> = {};
  switch (sub) {
    case 'ls': {
      const p = paths[0] ? s3Path(paths[0]) : undefined;
      if (!p || !p.bucket) {
        operation = 'ListBuckets';
        add('s3:ListAllMyBuckets', ['*']);
        perms[perms.length - 1]!.derived = false;
      } else {
        operation = 'ListObjectsV2';
        params.Bucket = p.bucket;
        params.Prefix = p.key;
        add('s3:ListBucket', [bucketArn(p.bucket)]);
        if (recursive) risks.push('bulk');
      }
      apiCalls.push(operation);
      risks.push('read_only');
      break;
    }
    case 'cp':
    case 'mv':
    case 'sync': {
      const [a, b] = paths as [string, string];
      const src = s3Path(a);
      const dst = s3Path(b);
      const many = recursive || sub === 'sync';
      if (!src && !dst) throw parseError(`${where}: ${sub} needs an s3:// path`);
      if (src && dst) operation = 'CopyObject';
      else if (dst) operation = 'PutObject';
      else operation = 'GetObject';
      if (src) {
        if (many) {
          add('s3:ListBucket', [bucketArn(src.bucket)]);
          apiCalls.push('ListObjectsV2');
        } else apiCalls.push('HeadObject');
        add('s3:GetObject', [objArn(src, many)]);
      } else localFile(a, 'read', 0);
      if (dst) {
        // A destination ending in "/" (or a bucket) receives the source's base name (cp/mv of one file).
        let key = dst.key;
        if (!many && (key === '' || key.endsWith('/'))) key += basename(src ? src.key : a);
        if (sub === 'sync') add('s3:ListBucket', [bucketArn(dst.bucket)]);
        add('s3:PutObject', [objArn({ bucket: dst.bucket, key }, many)]);
        const acl = opt('acl');
        if (typeof acl === 'string' || opt('grants')) add('s3:PutObjectAcl', [objArn({ bucket: dst.bucket, key }, many)]);
        const kmsKey = opt('sse-kms-key-id');
        if (opt('sse') === 'aws:kms' || typeof kmsKey === 'string') {
          // S3 asks KMS for the data key on the caller's behalf: the session may use the key only through S3.
          perms.push({ ...permission('kms:GenerateDataKey', { KeyId: typeof kmsKey === 'string' ? kmsKey : undefined }, c), viaService: `s3.${c.region}.amazonaws.com` });
        }
      } else localFile(b, 'write', 1);
      apiCalls.push(operation);
      if (sub === 'mv') {
        if (!src) {
          localFile(a, 'write', 0); // the local source is deleted
        } else add('s3:DeleteObject', [objArn(src, many)]);
        apiCalls.push('DeleteObject');
        risks.push('destructive');
      }
      if (sub === 'sync' && flag('delete')) {
        if (dst) add('s3:DeleteObject', [objArn(dst, true)]);
        else files.push({ path: expandPath(b, ctx, where), mode: 'write', argument: 'paths[1]' });
        apiCalls.push('DeleteObject');
        risks.push('destructive');
      }
      if (many) risks.push('bulk');
      risks.push('write');
      break;
    }
    case 'rm': {
      const p = s3Path(paths[0] ?? '');
      if (!p) throw parseError(`${where}: rm needs an s3:// path`);
      operation = 'DeleteObject';
      if (recursive) {
        add('s3:ListBucket', [bucketArn(p.bucket)]);
        apiCalls.push('ListObjectsV2');
        risks.push('bulk');
      }
      add('s3:DeleteObject', [objArn(p, recursive)]);
      apiCalls.push('DeleteObject');
      risks.push('destructive', 'write');
      break;
    }
    case 'mb': {
      const p = s3Path(paths[0] ?? '');
      if (!p) throw parseError(`${where}: mb needs an s3:// path`);
      operation = 'CreateBucket';
      params.Bucket = p.bucket;
      add('s3:CreateBucket', [bucketArn(p.bucket)]);
      apiCalls.push(operation);
      risks.push('write');
      break;
    }
    case 'rb': {
      const p = s3Path(paths[0] ?? '');
      if (!p) throw parseError(`${where}: rb needs an s3:// path`);
      operation = 'DeleteBucket';
      params.Bucket = p.bucket;
      if (flag('force')) {
        // --force empties the bucket first (rm --recursive).
        add('s3:ListBucket', [bucketArn(p.bucket)]);
        add('s3:DeleteObject', [obj(c, p.bucket, '', true)]);
        apiCalls.push('ListObjectsV2', 'DeleteObject');
        risks.push('bulk');
      }
      add('s3:DeleteBucket', [bucketArn(p.bucket)]);
      apiCalls.push(operation);
      risks.push('destructive', 'write');
      break;
    }
    case 'presign': {
      const p = s3Path(paths[0] ?? '');
      if (!p || !p.key) throw parseError(`${where}: presign needs an s3://bucket/key path`);
      // No API call now: a bearer URL that performs s3:GetObject when used (credential minting).
      operation = 'GetObject';
      add('s3:GetObject', [objArn(p, false)]);
      risks.push('credential_minting', 'read_only');
      break;
    }
    case 'website': {
      const p = s3Path(paths[0] ?? '');
      if (!p) throw parseError(`${where}: website needs an s3:// path`);
      operation = 'PutBucketWebsite';
      params.Bucket = p.bucket;
      add('s3:PutBucketWebsite', [bucketArn(p.bucket)]);
      apiCalls.push(operation);
      risks.push('write', 'internet_exposure');
      break;
    }
    default:
      throw parseError(`${where}: unsupported s3 command ${JSON.stringify(sub)}`);
  }
  const acl = opt('acl');
  if (typeof acl === 'string' && /^(public-read|public-read-write|authenticated-read)$/.test(acl)) risks.push('internet_exposure');
  const grants = opt('grants');
  if (Array.isArray(grants) && grants.some((g) => /AllUsers|AuthenticatedUsers/.test(g))) risks.push('internet_exposure');
  return { operation, apiCalls, permissions: mergePermissions(perms), risks, files, params };
}
