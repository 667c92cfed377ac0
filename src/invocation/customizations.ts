/**
 * CLI customization commands (docs/aws-cli-parsing.md §4): `s3` high-level commands, `<svc> wait`, credential
 * helpers, deploy/package helpers, local commands (`configure`, `history`). Each maps to the API calls it really
 * makes; customizations not listed here are refused (fail closed) rather than guessed.
 */
import type { ArnContext } from './arns.js';
import { unknownChoiceError, v2OnlyError } from './choices.js';
import { iamLiteral } from './iam-literal.js';
import { operationPermissions, permission, mergePermissions } from './actions.js';
import { type ParsedArgs, type Token, at, parseArgTable } from './grammar.js';
import { type ArgTable, type CommandModel, customArgTable, modelIndex } from './model.js';
import { type InvocationHead, canonicalArgs, decodeValue, emptyResult } from './result.js';
import { s3Command } from './s3-commands.js';
import type { ParsedInvocation, Permission, RiskSignal } from './types.js';
import { type DecodeState, expandPath, parseError } from './values.js';

/** What parseInvocation hands over for a customization command: what it has read so far. */
export interface CustomRequest {
  head: InvocationHead;
  command: string;
  /** The token after the command (`cp`, `wait`, `tail`). */
  subcommand: Token;
  /** The tokens after it, global options removed. */
  rest: Token[];
  /** The service command's model; undefined for `s3` and the local commands. */
  model: CommandModel | undefined;
  arnContext: ArnContext;
  /** Shared with parse.ts: local files the call touches, notes and CLI-only arguments are collected here. */
  decode: DecodeState;
}

/** A customization's result, and the risk signals the command itself carries (added to the computed ones). */
export interface CustomOutcome {
  result: ParsedInvocation;
  risks: RiskSignal[];
}

/**
 * `table[name]` when `name` is the table's own key. Model tables are parsed JSON objects: a plain lookup of a
 * typed name such as `constructor` would find Object.prototype's member instead of nothing.
 */
function own<T>(table: Record<string, T> | undefined, name: string): T | undefined {
  return table && Object.prototype.hasOwnProperty.call(table, name) ? table[name] : undefined;
}

/** Decoded options and positionals of a customization command, by CLI name. */
type CliOptions = Record<string, unknown>;

function customOptions(args: ParsedArgs, decode: DecodeState, where: string): CliOptions {
  const options: CliOptions = {};
  for (const option of args.options.values()) options[option.spec.name] = decodeValue(option.spec, option.value, decode, `${where} ${at(option.token)}`);
  for (const positional of args.positionals) options[positional.spec.name] = positional.value;
  Object.assign(decode.cliArgs, options);
  return options;
}

/** The option's value when it is a single string (not a flag or a list). */
const stringOption = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

/**
 * AWS CLI v2 configure subcommands absent from v1, with what they do to the caller's machine (v2
 * awscli/customizations/configure/). All are local; the runner refuses `configure` outright (§6.1 vector 12),
 * so these risks are what `explain` and policies see.
 *  - export-credentials prints the credentials the CLI resolved: a credential read.
 *  - sso / sso-session write SSO settings and start a browser sign-in (token cached under ~/.aws/sso).
 */
const V2_CONFIGURE: Record<string, RiskSignal[]> = {
  import: ['config_change', 'local_file_read'],
  'export-credentials': ['secret_read', 'credential_minting'],
  'list-profiles': ['read_only'],
  sso: ['config_change', 'credential_minting', 'external_process'],
  'sso-session': ['config_change'],
  'mfa-login': ['config_change', 'credential_minting'],
  wizard: ['config_change'],
};

/** What one customization does: its calls, the permissions they need, its own risk signals. */
interface Handled {
  service: string | null;
  operation: string | null;
  apiCalls: string[];
  permissions: Permission[];
  risks: RiskSignal[];
  kind?: ParsedInvocation['kind'];
  params?: Record<string, unknown>;
}

function iamRole(arnContext: ArnContext, roleName: string) {
  return `arn:${arnContext.partition}:iam::${arnContext.account}:role/${iamLiteral(roleName)}`;
}

export function customInvocation(request: CustomRequest): CustomOutcome {
  const { head, command, rest, model, arnContext, decode } = request;
  const subcommand = request.subcommand.text;
  const canonicalGlobals = head.globals.canonical;
  const version = decode.ctx.cliVersion ?? 'v1';
  const where = `${command} ${subcommand}`;
  const noRisks = (result: ParsedInvocation): CustomOutcome => ({ result, risks: [] });
  if (command === 'sso' && (subcommand === 'login' || subcommand === 'logout')) {
    // v2's `sso login/logout` run the caller's own sign-in (a browser flow whose token lands in ~/.aws/sso):
    // guard-aws supplies the credentials itself, and its sealed run has no SSO profile to sign in to.
    throw parseError(`${where} signs you in to AWS with your own SSO profile; guard-aws issues the credentials for each call itself, so run \`aws ${where}\` without guard-aws if you need it`, {
      reason: 'credential_flow',
    });
  }
  // `cli-dev` is the CLI developers' tooling: not a call to decide on.
  if (command === 'cli-dev') throw v2OnlyError(where, request.subcommand, version);
  // ------------------------------------------------------------------ local commands
  if (command === 'configure' || command === 'history') {
    const raw = modelIndex(version).commands[command]!.custom!;
    const table = own(raw.sub, subcommand);
    const v2Risks = command === 'configure' ? own(V2_CONFIGURE, subcommand) : undefined;
    if (!table && v2Risks) throw v2OnlyError(`${command} ${subcommand}`, request.subcommand, version);
    if (!table) throw unknownChoiceError(`${command}: unknown subcommand at ${at(request.subcommand)}`, request.subcommand, [...Object.keys(raw.sub ?? {}), 'help']);
    const args = parseArgTable(rest, customArgTable(table), where);
    const result = emptyResult(head, [...canonicalGlobals, command, subcommand, ...canonicalArgs(args)], args.help ? 'no_api_call' : 'local', command, subcommand);
    if (args.help) return noRisks(result);
    const risks: RiskSignal[] = [];
    if (command === 'history') risks.push('secret_read'); // stored requests and responses may hold secrets
    else if (v2Risks) risks.push(...v2Risks);
    else if (subcommand === 'get') {
      const variable = String(args.positionals[0]?.value ?? '');
      risks.push(/secret|token|key_id|access_key|credential/i.test(variable) ? 'secret_read' : 'read_only');
    } else if (subcommand === 'list') risks.push('read_only');
    else risks.push('config_change'); // set / add-model change how later calls run (endpoint_url, credential_process…)
    result.notes.push(`${command} ${subcommand} runs locally and calls no AWS API`);
    return { result, risks };
  }
  // ------------------------------------------------------------------ table lookup
  let table: ArgTable;
  let subcommandName = subcommand;
  let restTokens = rest;
  let waiterOperation: string | undefined;
  if (command === 's3' || command === 'ddb') {
    const subs = modelIndex(version).commands[command]!.custom!.sub;
    const raw = own(subs, subcommand);
    if (!raw) throw unknownChoiceError(`${command}: unknown command at ${at(request.subcommand)}`, request.subcommand, [...Object.keys(subs ?? {}), 'help']);
    table = customArgTable(raw);
  } else {
    const serviceModel = model!;
    const raw = serviceModel.custom[subcommand]!;
    if (subcommand === 'wait') {
      const [waiterToken, ...waiterArgs] = rest;
      if (!waiterToken) throw parseError(`${command} wait: missing waiter name`);
      if (waiterToken.text === 'help') return noRisks(emptyResult(head, [...canonicalGlobals, command, subcommand, 'help'], 'no_api_call', command, subcommand));
      const waiterRaw = own(raw.sub, waiterToken.text);
      waiterOperation = own(serviceModel.waiters, waiterToken.text);
      if (!waiterRaw || !waiterOperation) throw unknownChoiceError(`${command} wait: unknown waiter at ${at(waiterToken)}`, waiterToken, Object.keys(serviceModel.waiters));
      subcommandName = `wait ${waiterToken.text}`;
      restTokens = waiterArgs;
      table = customArgTable(waiterRaw);
      // waiter arguments are the operation's own API members plus --cli-input-json / skeleton
      for (const spec of table.options.values()) if (spec.name === 'generate-cli-skeleton') spec.literal = true;
    } else {
      table = customArgTable(raw);
    }
  }
  const args = parseArgTable(restTokens, table, where);
  const commandTokens = [command, ...subcommandName.split(' ')];
  const canonicalArgv = [...canonicalGlobals, ...commandTokens, ...canonicalArgs(args)];
  if (args.help) return noRisks(emptyResult(head, [...canonicalGlobals, ...commandTokens, 'help'], 'no_api_call', command, subcommandName));
  if (args.options.has('generate-cli-skeleton')) return noRisks(emptyResult(head, canonicalArgv, 'no_api_call', command, subcommandName));
  let handled: Handled;
  if (command === 's3') {
    const s3 = s3Command(subcommand, args, arnContext, decode.ctx, where);
    // s3 arguments can still load files (e.g. --metadata file://…) through the CLI's paramfile rule.
    customOptions(args, decode, where);
    decode.files.push(...s3.files);
    handled = { service: 's3', operation: s3.operation, apiCalls: s3.apiCalls, permissions: s3.permissions, risks: s3.risks, params: s3.params };
  } else if (waiterOperation) {
    const serviceModel = model!;
    const params: Record<string, unknown> = {};
    for (const option of args.options.values()) if (option.spec.member) params[option.spec.member] = decodeValue(option.spec, option.value, decode, `${where} ${at(option.token)}`);
    const permissions = operationPermissions({ service: serviceModel.service, prefix: serviceModel.prefix, api: waiterOperation }, params, arnContext, where);
    handled = { service: serviceModel.service, operation: waiterOperation, apiCalls: [waiterOperation], permissions, risks: [], params };
  } else {
    handled = otherCustom(command, subcommand, customOptions(args, decode, where), request, where);
  }
  const result = emptyResult(head, canonicalArgv, handled.kind ?? 'custom', command, subcommandName);
  result.service = handled.service;
  result.operation = handled.operation;
  result.apiCalls = handled.apiCalls;
  result.permissions = mergePermissions(handled.permissions);
  result.params = handled.params ?? {};
  result.files = decode.files;
  result.notes = decode.notes;
  if (Object.keys(decode.cliArgs).length) result.cliArgs = decode.cliArgs;
  return { result, risks: handled.risks };
}

function otherCustom(command: string, subcommand: string, options: CliOptions, request: CustomRequest, where: string): Handled {
  const arn = request.arnContext;
  const ctx = request.decode.ctx;
  const files = request.decode.files;
  /** The action on the resources its own parameters name. */
  const scoped = (action: string, params: Record<string, unknown> = {}) => permission(action, params, arn);
  /** `--name PATH` names a local file the CLI reads or writes. */
  const localFile = (name: string, mode: 'read' | 'write') => {
    const path = stringOption(options[name]);
    if (path) files.push({ path: expandPath(path, ctx, where), mode, argument: `--${name}` });
  };
  const star = (action: string): Permission => ({ action, resources: ['*'], derived: false });
  switch (`${command} ${subcommand}`) {
    case 'ecr get-login-password':
    case 'ecr get-login':
      return { service: 'ecr', operation: 'GetAuthorizationToken', apiCalls: ['GetAuthorizationToken'], permissions: [star('ecr:GetAuthorizationToken')], risks: ['credential_minting'] };
    case 'ecr-public get-login-password':
      return {
        service: 'ecr-public',
        operation: 'GetAuthorizationToken',
        apiCalls: ['GetAuthorizationToken'],
        permissions: [star('ecr-public:GetAuthorizationToken'), star('sts:GetServiceBearerToken')],
        risks: ['credential_minting'],
      };
    case 'eks get-token':
      // A presigned sts:GetCallerIdentity URL: a bearer token for the cluster (~15 min).
      return { service: 'sts', operation: 'GetCallerIdentity', apiCalls: [], permissions: [star('sts:GetCallerIdentity')], risks: ['credential_minting'] };
    case 'eks update-kubeconfig': {
      if (options['dry-run'] !== true) files.push({ path: expandPath(stringOption(options.kubeconfig) ?? '~/.kube/config', ctx, where), mode: 'write', argument: '--kubeconfig' });
      const perms = [scoped('eks:DescribeCluster', { name: options.name })];
      const risks: RiskSignal[] = ['config_change'];
      // --assume-role-arn: the CLI first calls sts:AssumeRole and describes the cluster with those credentials
      // (awscli/customizations/eks/update_kubeconfig.py); --role-arn is only written into the kubeconfig.
      const assumeRoleArn = stringOption(options['assume-role-arn']);
      if (assumeRoleArn) {
        perms.push(scoped('sts:AssumeRole', { RoleArn: assumeRoleArn }));
        risks.push('credential_minting');
      }
      return { service: 'eks', operation: 'DescribeCluster', apiCalls: assumeRoleArn ? ['sts.AssumeRole', 'DescribeCluster'] : ['DescribeCluster'], permissions: perms, risks };
    }
    case 'rds generate-db-auth-token': {
      const user = stringOption(options.username) ?? '*';
      return {
        service: 'rds',
        operation: null,
        apiCalls: [],
        permissions: [{ action: 'rds-db:connect', resources: [`arn:${arn.partition}:rds-db:${arn.region}:${arn.account}:dbuser:*/${iamLiteral(user)}`], derived: true }],
        risks: ['credential_minting'],
      };
    }
    case 'deploy push': {
      const location = /^s3:\/\/([^/]+)\/(.+)$/.exec(stringOption(options['s3-location']) ?? '');
      if (!location) throw parseError(`${where}: --s3-location must be s3://bucket/key`);
      localFile('source', 'read');
      return {
        service: 'codedeploy',
        operation: 'RegisterApplicationRevision',
        apiCalls: ['s3.PutObject', 'codedeploy.RegisterApplicationRevision'],
        permissions: [
          { action: 's3:PutObject', resources: [`arn:${arn.partition}:s3:::${iamLiteral(location[1]!)}/${iamLiteral(location[2]!)}`], derived: true },
          { action: 'codedeploy:RegisterApplicationRevision', resources: [`arn:${arn.partition}:codedeploy:${arn.region}:${arn.account}:application:${iamLiteral(String(options['application-name']))}`], derived: true },
        ],
        risks: ['write', 'local_file_read'],
      };
    }
    case 'cloudformation deploy': {
      const stack = { StackName: options['stack-name'] };
      const perms = ['cloudformation:DescribeStacks', 'cloudformation:CreateChangeSet', 'cloudformation:DescribeChangeSet', 'cloudformation:GetTemplateSummary'].map((a) => scoped(a, stack));
      if (options['no-execute-changeset'] !== true) perms.push(scoped('cloudformation:ExecuteChangeSet', stack));
      const roleArn = stringOption(options['role-arn']);
      if (roleArn) perms.push({ action: 'iam:PassRole', resources: [roleArn], derived: true });
      const bucket = stringOption(options['s3-bucket']);
      if (bucket) perms.push({ action: 's3:PutObject', resources: [`arn:${arn.partition}:s3:::${iamLiteral(bucket)}/*`], derived: true });
      localFile('template-file', 'read');
      const capabilities: unknown[] = Array.isArray(options.capabilities) ? options.capabilities : [];
      return {
        service: 'cloudformation',
        operation: 'CreateChangeSet',
        apiCalls: ['DescribeStacks', 'CreateChangeSet', 'DescribeChangeSet', 'ExecuteChangeSet'],
        permissions: perms,
        risks: ['write', 'local_file_read', ...(capabilities.some((capability) => typeof capability === 'string' && /IAM/.test(capability)) ? (['iam_change'] as RiskSignal[]) : [])],
      };
    }
    case 'cloudformation package': {
      const bucket = stringOption(options['s3-bucket']);
      const prefix = stringOption(options['s3-prefix']);
      localFile('template-file', 'read');
      localFile('output-template-file', 'write');
      const objects = bucket ? [`arn:${arn.partition}:s3:::${iamLiteral(bucket)}/${prefix ? `${iamLiteral(prefix)}/` : ''}*`] : ['*'];
      return {
        service: 's3',
        operation: 'PutObject',
        apiCalls: ['HeadObject', 'PutObject'],
        permissions: [
          { action: 's3:GetObject', resources: objects, derived: !!bucket },
          { action: 's3:PutObject', resources: objects, derived: !!bucket },
        ],
        risks: ['write', 'local_file_read'],
      };
    }
    case 'emr create-default-roles': {
      const roles = ['EMR_DefaultRole', 'EMR_EC2_DefaultRole'].map((roleName) => iamRole(arn, roleName));
      const instanceProfile = `arn:${arn.partition}:iam::${arn.account}:instance-profile/EMR_EC2_DefaultRole`;
      const risks: RiskSignal[] = ['iam_change', 'write'];
      if (options['iam-endpoint'] !== undefined) risks.push('endpoint_override');
      return {
        service: 'iam',
        operation: 'CreateRole',
        apiCalls: ['iam.GetRole', 'iam.CreateRole', 'iam.AttachRolePolicy', 'iam.GetInstanceProfile', 'iam.CreateInstanceProfile', 'iam.AddRoleToInstanceProfile'],
        permissions: [
          ...['iam:GetRole', 'iam:CreateRole', 'iam:AttachRolePolicy'].map((a) => ({ action: a, resources: roles, derived: true })),
          ...['iam:GetInstanceProfile', 'iam:CreateInstanceProfile', 'iam:AddRoleToInstanceProfile'].map((a) => ({ action: a, resources: [instanceProfile], derived: true })),
          { action: 'iam:GetPolicy', resources: [`arn:${arn.partition}:iam::aws:policy/*`], derived: true },
          { action: 'iam:GetPolicyVersion', resources: [`arn:${arn.partition}:iam::aws:policy/*`], derived: true },
        ],
        risks,
      };
    }
    case 'emr-containers update-role-trust-policy': {
      const role = iamRole(arn, String(options['role-name'] ?? '*'));
      return {
        service: 'iam',
        operation: 'UpdateAssumeRolePolicy',
        apiCalls: ['iam.GetRole', 'iam.UpdateAssumeRolePolicy'],
        permissions: [
          { action: 'iam:GetRole', resources: [role], derived: true },
          { action: 'iam:UpdateAssumeRolePolicy', resources: [role], derived: true },
        ],
        risks: ['iam_change', 'write', ...(options['iam-endpoint'] !== undefined ? (['endpoint_override'] as RiskSignal[]) : [])],
      };
    }
    case 'logs tail': {
      const group = String(options.group_name);
      return {
        service: 'logs',
        operation: 'FilterLogEvents',
        apiCalls: ['FilterLogEvents'],
        permissions: [scoped('logs:FilterLogEvents', { logGroupName: group })],
        risks: ['read_only'],
      };
    }
    case 'ddb put': {
      // v2 awscli/customizations/dynamodb/subcommands.py: items are YAML (inline or `-` for stdin); several
      // items without --condition go through BatchWriteItem, otherwise PutItem per item. Both write items into
      // the one table, so both are granted on it rather than guessing the count from stdin.
      const items = String(options.items ?? '');
      if (/^fileb?:\/\//i.test(items)) throw parseError(`${where}: items from file:// are not supported; pass them inline or on stdin (-)`);
      const table = { TableName: options.table_name };
      const perms = [scoped('dynamodb:PutItem', table)];
      if (options.condition === undefined) perms.push(scoped('dynamodb:BatchWriteItem', table));
      return { service: 'dynamodb', operation: 'PutItem', apiCalls: options.condition === undefined ? ['PutItem', 'BatchWriteItem'] : ['PutItem'], permissions: perms, risks: ['write'] };
    }
    case 'ddb select': {
      // Query when a key condition is given, Scan otherwise (same file); --index-name reads the index.
      const api = options['key-condition'] !== undefined ? 'Query' : 'Scan';
      const params = { TableName: options.table_name, ...(options['index-name'] !== undefined ? { IndexName: options['index-name'] } : {}) };
      return { service: 'dynamodb', operation: api, apiCalls: [api], permissions: [scoped(`dynamodb:${api}`, params)], risks: ['read_only'], params };
    }
    case 'logs start-live-tail':
      return {
        service: 'logs',
        operation: 'StartLiveTail',
        apiCalls: ['StartLiveTail'],
        permissions: [scoped('logs:StartLiveTail', { logGroupIdentifiers: options['log-group-identifiers'] })],
        risks: ['read_only'],
      };
    case 'codeartifact login':
      return {
        service: 'codeartifact',
        operation: 'GetAuthorizationToken',
        apiCalls: ['GetAuthorizationToken', 'GetRepositoryEndpoint'],
        permissions: [star('codeartifact:GetAuthorizationToken'), star('codeartifact:GetRepositoryEndpoint'), star('sts:GetServiceBearerToken')],
        risks: ['credential_minting', 'external_process', 'config_change'],
      };
    case 'codecommit credential-helper':
      return { service: null, operation: null, apiCalls: [], permissions: [], risks: ['credential_minting'], kind: 'local' };
    case 'cloudfront sign':
      localFile('private-key', 'read');
      return { service: null, operation: null, apiCalls: [], permissions: [], risks: ['credential_minting', 'local_file_read'], kind: 'local' };
    case 'configservice get-status':
      return {
        service: 'config',
        operation: 'DescribeConfigurationRecorderStatus',
        apiCalls: ['DescribeConfigurationRecorderStatus', 'DescribeDeliveryChannelStatus'],
        permissions: [star('config:DescribeConfigurationRecorderStatus'), star('config:DescribeDeliveryChannelStatus')],
        risks: ['read_only'],
      };
    case 'emr ssh':
    case 'emr socks':
    case 'emr get':
    case 'emr put':
      localFile('key-pair-file', 'read');
      return {
        service: 'emr',
        operation: 'DescribeCluster',
        apiCalls: ['DescribeCluster', 'ListInstances'],
        permissions: [star('elasticmapreduce:DescribeCluster'), star('elasticmapreduce:ListInstances')],
        risks: ['external_process', 'remote_execution', 'local_file_read'],
      };
    case 'emr describe-cluster':
      return {
        service: 'emr',
        operation: 'DescribeCluster',
        apiCalls: ['DescribeCluster', 'ListInstanceGroups', 'ListInstanceFleets', 'ListBootstrapActions'],
        permissions: ['DescribeCluster', 'ListInstanceGroups', 'ListInstanceFleets', 'ListBootstrapActions'].map((a) => scoped(`elasticmapreduce:${a}`, { ClusterId: options['cluster-id'] })),
        risks: ['read_only'],
      };
    case 'emr terminate-clusters':
      return { service: 'emr', operation: 'TerminateJobFlows', apiCalls: ['TerminateJobFlows'], permissions: [star('elasticmapreduce:TerminateJobFlows')], risks: ['destructive', 'write'] };
    case 'emr add-steps':
    case 'emr install-applications':
    case 'emr create-hbase-backup':
    case 'emr schedule-hbase-backup':
    case 'emr disable-hbase-backups':
    case 'emr restore-from-hbase-backup':
      return { service: 'emr', operation: 'AddJobFlowSteps', apiCalls: ['AddJobFlowSteps'], permissions: [star('elasticmapreduce:AddJobFlowSteps')], risks: ['write', 'remote_execution'] };
    case 'emr add-instance-groups':
      return { service: 'emr', operation: 'AddInstanceGroups', apiCalls: ['AddInstanceGroups'], permissions: [star('elasticmapreduce:AddInstanceGroups')], risks: ['write'] };
    case 'emr create-cluster': {
      const perms: Permission[] = [star('elasticmapreduce:RunJobFlow')];
      const roles: string[] = [];
      const serviceRole = stringOption(options['service-role']);
      if (serviceRole) roles.push(serviceRole.startsWith('arn:') ? serviceRole : iamRole(arn, serviceRole));
      perms.push({ action: 'iam:PassRole', resources: roles.length ? roles : ['*'], derived: roles.length > 0 });
      return { service: 'emr', operation: 'RunJobFlow', apiCalls: ['RunJobFlow'], permissions: perms, risks: ['write'] };
    }
    default:
      throw parseError(`${where}: this CLI customization is not supported by guard-aws (refused rather than guessed)`, { reason: 'unsupported_customization' });
  }
}

