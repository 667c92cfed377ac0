/**
 * Risk signals (docs/aws-cli-parsing.md §7), computed from the actions' access levels, the command class, the parameters
 * and the global options. Decisions on global options (documented in the README text of the report):
 *  - --endpoint-url, --ca-bundle, --no-verify-ssl → endpoint_override (traffic and the session token go to,
 *    or can be read by, someone other than AWS);
 *  - --profile, --no-sign-request → credential_override (other credentials, or none, replace the broker's);
 *  - --debug → secret_read (it logs the session token and access key id to stderr; docs/aws-cli-parsing.md §6.1 vector 6).
 */
import type { ArnContext } from './arns.js';
import type { ParsedInvocation, RiskSignal } from './types.js';
import { RISK_SIGNALS } from './types.js';

const CREDENTIAL_MINTING = new Set([
  'sts:AssumeRole', 'sts:AssumeRoleWithSAML', 'sts:AssumeRoleWithWebIdentity', 'sts:AssumeRoot', 'sts:GetFederationToken',
  'sts:GetSessionToken', 'sts:GetServiceBearerToken', 'iam:CreateAccessKey', 'iam:CreateLoginProfile', 'iam:UpdateLoginProfile',
  'iam:CreateServiceSpecificCredential', 'iam:ResetServiceSpecificCredential', 'ecr:GetAuthorizationToken',
  'ecr-public:GetAuthorizationToken', 'codeartifact:GetAuthorizationToken', 'sso:GetRoleCredentials',
  'cognito-identity:GetCredentialsForIdentity', 'cognito-identity:GetOpenIdTokenForDeveloperIdentity',
  'gamelift:RequestUploadCredentials', 'redshift:GetClusterCredentials', 'redshift:GetClusterCredentialsWithIAM',
  'redshift-serverless:GetCredentials', 'rds-db:connect', 'ssm:GetConnectionStatus', 'iot:CreateKeysAndCertificate',
  'lightsail:GetInstanceAccessDetails', 'ec2-instance-connect:SendSSHPublicKey', 'ec2-instance-connect:SendSerialConsoleSSHPublicKey',
]);

const SECRET_READ = new Set([
  'secretsmanager:GetSecretValue', 'secretsmanager:BatchGetSecretValue', 'kms:Decrypt', 'ec2:GetPasswordData',
  'lambda:GetFunctionConfiguration', 'lambda:GetFunction', 'ssm:GetParameter', 'ssm:GetParameters', 'ssm:GetParametersByPath',
  'ssm:GetParameterHistory', 'iam:GetCredentialReport', 'cloudformation:GetTemplate', 'ec2:GetLaunchTemplateData',
  'ecs:DescribeTaskDefinition', 'batch:DescribeJobDefinitions', 'apprunner:DescribeService',
]);

const REMOTE_EXECUTION = new Set([
  'ssm:SendCommand', 'ssm:StartSession', 'ssm:StartAutomationExecution', 'ecs:ExecuteCommand', 'lambda:UpdateFunctionCode',
  'lambda:CreateFunction', 'ec2-instance-connect:SendSSHPublicKey', 'glue:CreateDevEndpoint',
  'sagemaker:CreatePresignedNotebookInstanceUrl', 'cloudshell:StartEnvironment',
]);

const DESTRUCTIVE_OP = /^(Delete|Terminate|Purge|Remove|Deregister|Destroy|Disable|Revoke|Detach|Cancel|Reset|Stop)/;
const DESTRUCTIVE_FLAGS = /^(skip-final-snapshot|delete-automated-backups|force-delete-without-recovery|force|delete|recursive)$/;

// Secrets on the caller's machine: reading them into a parameter sends them to AWS (docs/aws-cli-parsing.md §6.1 vector 14).
const SECRET_PATHS = /(^|\/)(\.aws|\.ssh|\.gnupg|\.kube|\.docker|\.config\/gcloud)(\/|$)|^\/proc\/|^\/etc\/(shadow|gshadow|sudoers)|(^|\/)\.(netrc|pgpass|git-credentials|env)$|\.pem$|id_(rsa|ed25519|ecdsa)/;

function walk(v: unknown, fn: (key: string, value: unknown) => void, key = '', depth = 0): void {
  if (depth > 12) return;
  fn(key, v);
  if (Array.isArray(v)) for (const x of v) walk(x, fn, key, depth + 1);
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, fn, k, depth + 1);
}

function policyIsPublic(doc: unknown): boolean {
  let pub = false;
  walk(doc, (k, v) => {
    if (k !== 'Principal' && k !== 'principal') return;
    if (v === '*') pub = true;
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const aws = (v as Record<string, unknown>).AWS;
      if (aws === '*' || (Array.isArray(aws) && aws.includes('*'))) pub = true;
    }
  });
  return pub;
}

function foreignPrincipal(doc: unknown, account: string): boolean {
  let found = false;
  walk(doc, (k, v) => {
    if (typeof v === 'string' && /^arn:[\w-]+:iam::(\d{12}):/.test(v) && k !== 'Resource') {
      const a = /::(\d{12}):/.exec(v)![1];
      if (a !== account) found = true;
    }
    if (k === 'AWS' && typeof v === 'string' && /^\d{12}$/.test(v) && v !== account) found = true;
  });
  return found;
}

export function computeRisks(res: ParsedInvocation, extra: RiskSignal[], c: ArnContext): RiskSignal[] {
  const r = new Set<RiskSignal>(extra);
  const g = res.globals;
  if (g['endpoint-url'] !== undefined || g['ca-bundle'] !== undefined || g['no-verify-ssl'] === true) r.add('endpoint_override');
  if (g.profile !== undefined || g['no-sign-request'] === true) r.add('credential_override');
  if (g.debug === true) r.add('secret_read');
  const levels = Object.values(res.accessLevels);
  if (levels.some((l) => l === 'Write' || l === 'Permissions management' || l === 'Tagging')) r.add('write');
  if (levels.some((l) => l === 'Permissions management')) r.add('iam_change');
  for (const a of res.actions) {
    if (a.startsWith('iam:') && res.accessLevels[a] !== 'List' && res.accessLevels[a] !== 'Read') r.add('iam_change');
    if (CREDENTIAL_MINTING.has(a)) r.add('credential_minting');
    if (SECRET_READ.has(a)) {
      if (!a.startsWith('ssm:GetParameter') || res.params.WithDecryption === true) r.add('secret_read');
    }
    if (REMOTE_EXECUTION.has(a)) r.add('remote_execution');
  }
  if (res.command === 'ssm' && res.subcommand === 'start-session') r.add('external_process');
  if (res.command === 'ecs' && res.subcommand === 'execute-command') r.add('external_process');
  if (res.operation && DESTRUCTIVE_OP.test(res.operation) && !/^(Stop|Disable|Cancel|Detach|Revoke|Deregister|Reset)/.test(res.operation)) r.add('destructive');
  if (res.kind === 'api' && res.operation && /^Batch|^(DeleteObjects|BatchWriteItem)$/.test(res.operation)) r.add('bulk');
  const p = res.params;
  // Deferred destruction (docs/aws-cli-parsing.md §7): expiration lifecycle rules, shorter log retention, suspended
  // versioning, scheduled key/secret deletion.
  if (res.operation && /^PutBucketLifecycle/.test(res.operation) && JSON.stringify(p).includes('Expiration')) r.add('destructive');
  if (res.operation === 'PutRetentionPolicy' || (res.operation && /^Schedule\w*Deletion$/.test(res.operation))) r.add('destructive');
  if (res.operation === 'PutBucketVersioning' && (p.VersioningConfiguration as Record<string, unknown> | undefined)?.Status === 'Suspended') r.add('destructive');
  if (p.SkipFinalSnapshot === true || p.DeleteAutomatedBackups === true || p.ForceDeleteWithoutRecovery === true) r.add('destructive');
  if (res.operation === 'GetParametersByPath' && p.Recursive === true) r.add('bulk');
  // Exposure to the internet (docs/aws-cli-parsing.md §7): open CIDRs, public ACLs and grants, public principals,
  // disabled public access blocks, publicly accessible databases, AMIs/snapshots shared with "all".
  walk({ ...(res.cliArgs ?? {}), ...p }, (k, v) => {
    if (typeof v === 'string') {
      if (v === '0.0.0.0/0' || v === '::/0') r.add('internet_exposure');
      if (/^(ACL|Acl|CannedACL|acl)$/.test(k) && /^(public-read|public-read-write|authenticated-read)$/.test(v)) r.add('internet_exposure');
      if (/acs\.amazonaws\.com\/groups\/global\/(AllUsers|AuthenticatedUsers)/.test(v)) r.add('internet_exposure');
      if ((k === 'Principal' || k === 'principal') && v === '*') r.add('internet_exposure');
      if ((k === 'Group' || k === 'GroupNames' || k === 'ValuesToAdd' || k === 'UserGroups') && v === 'all') r.add('internet_exposure');
      if (/Policy|Document|policy/.test(k) && /^\s*\{/.test(v)) {
        try {
          const doc = JSON.parse(v);
          if (policyIsPublic(doc)) r.add('internet_exposure');
          if (foreignPrincipal(doc, c.account)) r.add('cross_account');
        } catch {
          /* not JSON: nothing to inspect */
        }
      }
    }
    if (k === 'PubliclyAccessible' && v === true) r.add('internet_exposure');
    if (k === 'PublicAccessBlockConfiguration' && v && typeof v === 'object' && Object.values(v).some((x) => x === false || x === 'false')) r.add('internet_exposure');
  });
  if (res.operation === 'DeletePublicAccessBlock') r.add('internet_exposure');
  if (p.AttributeName === 'restore' && Array.isArray(p.ValuesToAdd) && p.ValuesToAdd.includes('all')) r.add('internet_exposure');
  if (typeof p.UserData === 'string' && res.operation === 'RunInstances') r.add('remote_execution');
  for (const f of res.files) {
    r.add(f.mode === 'read' ? 'local_file_read' : 'local_file_write');
    if (f.mode === 'read' && SECRET_PATHS.test(f.path)) r.add('secret_read');
  }
  if (c.foreignAccounts.size) r.add('cross_account');
  if (res.kind === 'api' || res.kind === 'custom') {
    const mutating = r.has('write') || r.has('destructive') || r.has('iam_change') || r.has('credential_minting') || r.has('remote_execution') || r.has('internet_exposure');
    if (!mutating && levels.every((l) => l === 'List' || l === 'Read')) r.add('read_only');
    else r.delete('read_only');
  }
  if (res.kind === 'no_api_call' && !r.size) r.add('read_only');
  void DESTRUCTIVE_FLAGS;
  return RISK_SIGNALS.filter((s) => r.has(s));
}
