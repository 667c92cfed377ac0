/**
 * Risk signals (docs/aws-cli-parsing.md §7), computed from the actions' access levels, the command class, the parameters
 * and the global options. Decisions on global options (documented in the README text of the report):
 *  - --endpoint-url, --ca-bundle, --no-verify-ssl → endpoint_override (traffic and the session token go to,
 *    or can be read by, someone other than AWS);
 *  - --profile, --no-sign-request → credential_override (other credentials, or none, replace the broker's);
 *  - --debug → secret_read (it logs the session token and access key id to stderr; docs/aws-cli-parsing.md §6.1 vector 6).
 */
import type { ArnContext } from './arns.js';
import { actionResourceTypes } from './iam-catalog.js';
import { returnsSecret } from './sensitive-outputs.js';
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

/** Calls `visit` on every value of a parameter tree with the member name it stands under (12 levels deep). */
function walk(value: unknown, visit: (key: string, value: unknown) => void, key = '', depth = 0): void {
  if (depth > 12) return;
  visit(key, value);
  if (Array.isArray(value)) for (const element of value) walk(element, visit, key, depth + 1);
  else if (value && typeof value === 'object') for (const [member, child] of Object.entries(value)) walk(child, visit, member, depth + 1);
}

/** A policy document with a `"Principal": "*"` or `{"AWS": "*"}`: anyone may act. */
function policyIsPublic(doc: unknown): boolean {
  let isPublic = false;
  walk(doc, (key, value) => {
    if (key !== 'Principal' && key !== 'principal') return;
    if (value === '*') isPublic = true;
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      const aws = (value as Record<string, unknown>).AWS;
      if (aws === '*' || (Array.isArray(aws) && aws.includes('*'))) isPublic = true;
    }
  });
  return isPublic;
}

function foreignPrincipal(doc: unknown, account: string): boolean {
  let found = false;
  walk(doc, (key, value) => {
    if (typeof value === 'string' && /^arn:[\w-]+:iam::(\d{12}):/.test(value) && key !== 'Resource') {
      const principalAccount = /::(\d{12}):/.exec(value)![1];
      if (principalAccount !== account) found = true;
    }
    if (key === 'AWS' && typeof value === 'string' && /^\d{12}$/.test(value) && value !== account) found = true;
  });
  return found;
}

export function computeRisks(res: ParsedInvocation, extra: RiskSignal[], arn: ArnContext): RiskSignal[] {
  const signals = new Set<RiskSignal>(extra);
  const globals = res.globals;
  if (globals['endpoint-url'] !== undefined || globals['ca-bundle'] !== undefined || globals['no-verify-ssl'] === true) signals.add('endpoint_override');
  if (globals.profile !== undefined || globals['no-sign-request'] === true) signals.add('credential_override');
  if (globals.debug === true) signals.add('secret_read');
  const levels = Object.values(res.accessLevels);
  if (levels.some((level) => level === 'Write' || level === 'Permissions management' || level === 'Tagging')) signals.add('write');
  if (levels.some((level) => level === 'Permissions management')) signals.add('iam_change');
  for (const action of res.actions) {
    if (action.startsWith('iam:') && res.accessLevels[action] !== 'List' && res.accessLevels[action] !== 'Read') signals.add('iam_change');
    if (CREDENTIAL_MINTING.has(action)) signals.add('credential_minting');
    if (SECRET_READ.has(action)) {
      if (!action.startsWith('ssm:GetParameter') || res.params.WithDecryption === true) signals.add('secret_read');
    }
    if (REMOTE_EXECUTION.has(action)) signals.add('remote_execution');
  }
  // Operations whose response holds a secret in clear (data/sensitive-outputs.json: botocore's sensitive shapes
  // that are secrets, plus a curated list) — Lambda and container environments, user data, client secrets, keys.
  if ((res.kind === 'api' || res.kind === 'custom') && returnsSecret(res.command, res.subcommand, res.params)) signals.add('secret_read');
  if (res.command === 'ssm' && res.subcommand === 'start-session') signals.add('external_process');
  if (res.command === 'ecs' && res.subcommand === 'execute-command') signals.add('external_process');
  if (res.operation && DESTRUCTIVE_OP.test(res.operation) && !/^(Stop|Disable|Cancel|Detach|Revoke|Deregister|Reset)/.test(res.operation)) signals.add('destructive');
  if (res.kind === 'api' && res.operation && /^Batch|^(DeleteObjects|BatchWriteItem)$/.test(res.operation)) signals.add('bulk');
  const params = res.params;
  // Deferred destruction (docs/aws-cli-parsing.md §7): expiration lifecycle rules, shorter log retention, suspended
  // versioning, scheduled key/secret deletion.
  if (res.operation && /^PutBucketLifecycle/.test(res.operation) && JSON.stringify(params).includes('Expiration')) signals.add('destructive');
  if (res.operation === 'PutRetentionPolicy' || (res.operation && /^Schedule\w*Deletion$/.test(res.operation))) signals.add('destructive');
  if (res.operation === 'PutBucketVersioning' && (params.VersioningConfiguration as Record<string, unknown> | undefined)?.Status === 'Suspended') signals.add('destructive');
  if (params.SkipFinalSnapshot === true || params.DeleteAutomatedBackups === true || params.ForceDeleteWithoutRecovery === true) signals.add('destructive');
  if (res.operation === 'GetParametersByPath' && params.Recursive === true) signals.add('bulk');
  // Exposure to the internet (docs/aws-cli-parsing.md §7): open CIDRs, public ACLs and grants, public principals,
  // disabled public access blocks, publicly accessible databases, AMIs/snapshots shared with "all".
  walk({ ...(res.cliArgs ?? {}), ...params }, (key, value) => {
    if (typeof value === 'string') {
      if (value === '0.0.0.0/0' || value === '::/0') signals.add('internet_exposure');
      if (/^(ACL|Acl|CannedACL|acl)$/.test(key) && /^(public-read|public-read-write|authenticated-read)$/.test(value)) signals.add('internet_exposure');
      if (/acs\.amazonaws\.com\/groups\/global\/(AllUsers|AuthenticatedUsers)/.test(value)) signals.add('internet_exposure');
      if ((key === 'Principal' || key === 'principal') && value === '*') signals.add('internet_exposure');
      if ((key === 'Group' || key === 'GroupNames' || key === 'ValuesToAdd' || key === 'UserGroups') && value === 'all') signals.add('internet_exposure');
      if (/Policy|Document|policy/.test(key) && /^\s*\{/.test(value)) {
        try {
          const doc = JSON.parse(value);
          if (policyIsPublic(doc)) signals.add('internet_exposure');
          if (foreignPrincipal(doc, arn.account)) signals.add('cross_account');
        } catch {
          /* not JSON: nothing to inspect */
        }
      }
    }
    if (key === 'PubliclyAccessible' && value === true) signals.add('internet_exposure');
    if (key === 'PublicAccessBlockConfiguration' && value && typeof value === 'object' && Object.values(value).some((setting) => setting === false || setting === 'false')) signals.add('internet_exposure');
  });
  if (res.operation === 'DeletePublicAccessBlock') signals.add('internet_exposure');
  if (params.AttributeName === 'restore' && Array.isArray(params.ValuesToAdd) && params.ValuesToAdd.includes('all')) signals.add('internet_exposure');
  if (typeof params.UserData === 'string' && res.operation === 'RunInstances') signals.add('remote_execution');
  for (const file of res.files) {
    signals.add(file.mode === 'read' ? 'local_file_read' : 'local_file_write');
    if (file.mode === 'read' && SECRET_PATHS.test(file.path)) signals.add('secret_read');
  }
  if (arn.foreignAccounts.size) signals.add('cross_account');
  // A write on an action with resource-level permissions whose resource the request does not name (or names in
  // a way guard-aws cannot read): its grant covers any such resource of the account (docs/aws-cli-parsing.md
  // §5.3). Never silent: policies see `any_resource`, approvers are told "any resource".
  for (const permission of res.permissions) {
    const level = res.accessLevels[permission.action];
    if (!permission.derived && (level === 'Write' || level === 'Permissions management' || level === 'Tagging') && actionResourceTypes(permission.action).length) signals.add('any_resource');
  }
  if (res.kind === 'api' || res.kind === 'custom') {
    const mutating = signals.has('write') || signals.has('destructive') || signals.has('iam_change') || signals.has('credential_minting') || signals.has('remote_execution') || signals.has('internet_exposure');
    if (!mutating && levels.every((level) => level === 'List' || level === 'Read')) signals.add('read_only');
    else signals.delete('read_only');
  }
  if (res.kind === 'no_api_call' && !signals.size) signals.add('read_only');
  void DESTRUCTIVE_FLAGS;
  return RISK_SIGNALS.filter((signal) => signals.has(signal));
}
