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

/** `s3://bucket/key` split as the CLI's split_s3_bucket_key does; undefined for a local path. */
function s3Path(path: string): S3Path | undefined {
  if (!path.startsWith('s3://')) return undefined;
  const rest = path.slice(5);
  const slash = rest.indexOf('/');
  // access-point / Outposts ARNs as "bucket" (split_s3_bucket_key): arn:...:accesspoint/NAME/key
  const accessPoint = /^(arn:[^/]+?:(?:accesspoint|outpost\/[^/]+\/accesspoint)\/[^/]+)\/?(.*)$/.exec(rest);
  if (accessPoint) return { bucket: accessPoint[1]!, key: accessPoint[2] ?? '' };
  return slash < 0 ? { bucket: rest, key: '' } : { bucket: rest.slice(0, slash), key: rest.slice(slash + 1) };
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
const objectArn = (arn: ArnContext, bucket: string, key: string, many = false) =>
  `arn:${arn.partition}:s3:::${iamLiteral(bucket)}/${iamLiteral(key)}${many ? '*' : ''}`;

export function s3Command(subcommand: string, args: ParsedArgs, arn: ArnContext, ctx: InvocationContext, where: string): S3Result {
  const option = (name: string) => args.options.get(name)?.value;
  const flag = (name: string) => option(name) === true;
  const paths = args.positionals.flatMap((positional) => (Array.isArray(positional.value) ? positional.value : [positional.value]));
  const risks: RiskSignal[] = [];
  const files: LocalFile[] = [];
  const perms: Permission[] = [];
  const apiCalls: string[] = [];
  const recursive = flag('recursive');
  const add = (action: string, resources: string[]) => perms.push({ action, resources, derived: true });
  // An access point / Outposts ARN as the "bucket" names its account: another account's is a cross-account call.
  const noteAccount = (bucket: string) => {
    const account = bucket.split(':')[4];
    if (account && /^\d{12}$/.test(account) && account !== arn.account) arn.foreignAccounts.add(account);
  };
  const bucketArn = (bucket: string) => (bucket.startsWith('arn:') ? (noteAccount(bucket), iamLiteral(bucket)) : `arn:${arn.partition}:s3:::${iamLiteral(bucket)}`);
  const objArn = (path: S3Path, many: boolean) =>
    path.bucket.startsWith('arn:')
      ? (noteAccount(path.bucket), `${iamLiteral(path.bucket)}/object/${iamLiteral(path.key)}${many ? '*' : ''}`)
      : objectArn(arn, path.bucket, path.key, many);
  const localFile = (path: string, mode: 'read' | 'write', position: number) => {
    if (path === '-') return;
    files.push({ path: expandPath(path, ctx, where), mode, argument: `paths[${position}]` });
    risks.push(mode === 'read' ? 'local_file_read' : 'local_file_write');
  };
  let operation = '';
  const params: Record<string, unknown> = {};
  switch (subcommand) {
    case 'ls': {
      const target = paths[0] ? s3Path(paths[0]) : undefined;
      if (!target || !target.bucket) {
        operation = 'ListBuckets';
        add('s3:ListAllMyBuckets', ['*']);
        perms[perms.length - 1]!.derived = false;
      } else {
        operation = 'ListObjectsV2';
        params.Bucket = target.bucket;
        params.Prefix = target.key;
        add('s3:ListBucket', [bucketArn(target.bucket)]);
        if (recursive) risks.push('bulk');
      }
      apiCalls.push(operation);
      risks.push('read_only');
      break;
    }
    case 'cp':
    case 'mv':
    case 'sync': {
      const [from, to] = paths as [string, string];
      const src = s3Path(from);
      const dst = s3Path(to);
      const many = recursive || subcommand === 'sync';
      if (!src && !dst) throw parseError(`${where}: ${subcommand} needs an s3:// path`);
      if (src && dst) operation = 'CopyObject';
      else if (dst) operation = 'PutObject';
      else operation = 'GetObject';
      if (src) {
        if (many) {
          add('s3:ListBucket', [bucketArn(src.bucket)]);
          apiCalls.push('ListObjectsV2');
        } else apiCalls.push('HeadObject');
        add('s3:GetObject', [objArn(src, many)]);
      } else localFile(from, 'read', 0);
      if (dst) {
        // A destination ending in "/" (or a bucket) receives the source's base name (cp/mv of one file).
        let key = dst.key;
        if (!many && (key === '' || key.endsWith('/'))) key += basename(src ? src.key : from);
        if (subcommand === 'sync') add('s3:ListBucket', [bucketArn(dst.bucket)]);
        add('s3:PutObject', [objArn({ bucket: dst.bucket, key }, many)]);
        const acl = option('acl');
        if (typeof acl === 'string' || option('grants')) add('s3:PutObjectAcl', [objArn({ bucket: dst.bucket, key }, many)]);
        const kmsKey = option('sse-kms-key-id');
        if (option('sse') === 'aws:kms' || typeof kmsKey === 'string') {
          // S3 asks KMS for the data key on the caller's behalf: the session may use the key only through S3.
          perms.push({ ...permission('kms:GenerateDataKey', { KeyId: typeof kmsKey === 'string' ? kmsKey : undefined }, arn), viaService: `s3.${arn.region}.amazonaws.com` });
        }
      } else localFile(to, 'write', 1);
      // v2 copies an S3 object's tags with it unless --copy-props says otherwise (v2
      // awscli/customizations/s3/subcommands.py, --copy-props default): GetObjectTagging on the source and
      // PutObjectTagging on the destination (the tags of a multipart copy are read and written explicitly).
      const copyProps = option('copy-props');
      if (src && dst && ctx.cliVersion === 'v2' && copyProps !== 'none' && copyProps !== 'metadata-directive') {
        let key = dst.key;
        if (!many && (key === '' || key.endsWith('/'))) key += basename(src.key);
        add('s3:GetObjectTagging', [objArn(src, many)]);
        add('s3:PutObjectTagging', [objArn({ bucket: dst.bucket, key }, many)]);
      }
      apiCalls.push(operation);
      if (subcommand === 'mv') {
        if (!src) {
          localFile(from, 'write', 0); // the local source is deleted
        } else add('s3:DeleteObject', [objArn(src, many)]);
        apiCalls.push('DeleteObject');
        risks.push('destructive');
      }
      if (subcommand === 'sync' && flag('delete')) {
        if (dst) add('s3:DeleteObject', [objArn(dst, true)]);
        else files.push({ path: expandPath(to, ctx, where), mode: 'write', argument: 'paths[1]' });
        apiCalls.push('DeleteObject');
        risks.push('destructive');
      }
      if (many) risks.push('bulk');
      risks.push('write');
      break;
    }
    case 'rm': {
      const target = s3Path(paths[0] ?? '');
      if (!target) throw parseError(`${where}: rm needs an s3:// path`);
      operation = 'DeleteObject';
      if (recursive) {
        add('s3:ListBucket', [bucketArn(target.bucket)]);
        apiCalls.push('ListObjectsV2');
        risks.push('bulk');
      }
      add('s3:DeleteObject', [objArn(target, recursive)]);
      apiCalls.push('DeleteObject');
      risks.push('destructive', 'write');
      break;
    }
    case 'mb': {
      const target = s3Path(paths[0] ?? '');
      if (!target) throw parseError(`${where}: mb needs an s3:// path`);
      operation = 'CreateBucket';
      params.Bucket = target.bucket;
      add('s3:CreateBucket', [bucketArn(target.bucket)]);
      apiCalls.push(operation);
      risks.push('write');
      break;
    }
    case 'rb': {
      const target = s3Path(paths[0] ?? '');
      if (!target) throw parseError(`${where}: rb needs an s3:// path`);
      operation = 'DeleteBucket';
      params.Bucket = target.bucket;
      if (flag('force')) {
        // --force empties the bucket first (rm --recursive).
        add('s3:ListBucket', [bucketArn(target.bucket)]);
        add('s3:DeleteObject', [objectArn(arn, target.bucket, '', true)]);
        apiCalls.push('ListObjectsV2', 'DeleteObject');
        risks.push('bulk');
      }
      add('s3:DeleteBucket', [bucketArn(target.bucket)]);
      apiCalls.push(operation);
      risks.push('destructive', 'write');
      break;
    }
    case 'presign': {
      const target = s3Path(paths[0] ?? '');
      if (!target || !target.key) throw parseError(`${where}: presign needs an s3://bucket/key path`);
      // No API call now: a bearer URL that performs s3:GetObject when used (credential minting).
      operation = 'GetObject';
      add('s3:GetObject', [objArn(target, false)]);
      risks.push('credential_minting', 'read_only');
      break;
    }
    case 'website': {
      const target = s3Path(paths[0] ?? '');
      if (!target) throw parseError(`${where}: website needs an s3:// path`);
      operation = 'PutBucketWebsite';
      params.Bucket = target.bucket;
      add('s3:PutBucketWebsite', [bucketArn(target.bucket)]);
      apiCalls.push(operation);
      risks.push('write', 'internet_exposure');
      break;
    }
    default:
      throw parseError(`${where}: unsupported s3 command ${JSON.stringify(subcommand)}`);
  }
  const acl = option('acl');
  if (typeof acl === 'string' && /^(public-read|public-read-write|authenticated-read)$/.test(acl)) risks.push('internet_exposure');
  const grants = option('grants');
  if (Array.isArray(grants) && grants.some((grant) => /AllUsers|AuthenticatedUsers/.test(grant))) risks.push('internet_exposure');
  return { operation, apiCalls, permissions: mergePermissions(perms), risks, files, params };
}
