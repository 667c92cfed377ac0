/**
 * CLI customization commands (reference §3): `s3` high-level commands, `<svc> wait`, credential helpers,
 * deploy/package helpers, local commands (`configure`, `history`). Each maps to the API calls it really makes;
 * customizations not listed here are refused (fail closed) rather than guessed.
 */
import type { ArnContext } from './arns.js';
import { iamLiteral } from './iam-literal.js';
import { operationPermissions, permission, mergePermissions } from './actions.js';
import { type ParsedArgs, at, parseArgTable } from './grammar.js';
import { buildArgTable, customArgTable, modelIndex, type ArgTable } from './model.js';
import { type CustomInput, canonicalArgs, emptyResult, decodeValue } from './parse.js';
import { s3Command } from './s3-commands.js';
import type { ParsedInvocation, Permission, RiskSignal } from './types.js';
import { expandPath, parseError } from './values.js';

type Opts = Record<string, unknown>;

function customOpts(args: ParsedArgs, inp: CustomInput, where: string): Opts {
  const o: Opts = {};
  for (const a of args.options.values()) o[a.spec.name] = decodeValue(a.spec, a.value, inp.st, `${where} ${at(a.token)}`);
  for (const p of args.positionals) o[p.spec.name] = p.value;
  Object.assign(inp.st.cliArgs, o);
  return o;
}

const s = (v: unknown) => (typeof v === 'string' ? v : undefined);

// `logs tail` exists only in AWS CLI v2 (awscli/customizations/logs/tail.py, v2 branch).
const LOGS_TAIL_V2: ArgTable = buildArgTable(
  ['follow|-|b', 'since|-|s', 'format|-|s', 'filter-pattern|-|s', 'log-stream-names|-|l|+', 'log-stream-name-prefix|-|s'],
  ['group_name|-|s'],
);

/** AWS CLI v2 configure subcommands absent from v1, with what they do to the caller's machine. */
const V2_CONFIGURE: Record<string, RiskSignal[]> = {
  import: ['config_change', 'local_file_read'],
  'export-credentials': ['secret_read', 'credential_minting'],
  'list-profiles': ['read_only'],
  sso: ['config_change', 'credential_minting', 'external_process'],
  'sso-session': ['config_change'],
  'mfa-login': ['config_change', 'credential_minting'],
};

interface Handled {
  service: string | null;
  operation: string | null;
  apiCalls: string[];
  permissions: Permission[];
  risks: RiskSignal[];
  kind?: ParsedInvocation['kind'];
  params?: Record<string, unknown>;
}

function iamRole(c: ArnContext, n: string) {
  return `arn:${c.partition}:iam::${c.account}:role/${iamLiteral(n)}`;
}

export function customInvocation(inp: CustomInput): ParsedInvocation {
  const { command, sub, rest, c, g, region } = inp;
  const where = `${command} ${sub}`;
  // ------------------------------------------------------------------ local commands
  if (command === 'configure' || command === 'history') {
    const raw = modelIndex().commands[command]!.custom!;
    const table = raw.sub?.[sub];
    if (!table && command === 'configure' && inp.version === 'v2' && V2_CONFIGURE[sub]) {
      // v2-only configure subcommands (v2 awscli/customizations/configure/): local; their arguments are not
      // modelled here, so the argv is passed through as given.
      const r = emptyResult(inp.argv, inp.argv, 'local', command, sub, g.values, region);
      inp.risks.push(...V2_CONFIGURE[sub]!);
      r.notes.push(`configure ${sub} (AWS CLI v2) runs locally`);
      return r;
    }
    if (!table) throw parseError(`${command}: unknown subcommand at ${at(inp.subTok)}`, { index: inp.subTok.index });
    const args = parseArgTable(rest, customArgTable(table), where);
    const r = emptyResult(inp.argv, [...g.canonical, command, sub, ...canonicalArgs(args)], args.help ? 'no_api_call' : 'local', command, sub, g.values, region);
    if (args.help) return r;
    const risks: RiskSignal[] = [];
    if (command === 'history') risks.push('secret_read'); // stored requests and responses may hold secrets
    else if (sub === 'get') {
      const v = String(args.positionals[0]?.value ?? '');
      risks.push(/secret|token|key_id|access_key|credential/i.test(v) ? 'secret_read' : 'read_only');
    } else if (sub === 'list') risks.push('read_only');
    else risks.push('config_change'); // set / add-model change how later calls run (endpoint_url, credential_process…)
    inp.risks.push(...risks);
    r.notes.push(`${command} ${sub} runs locally and calls no AWS API`);
    return r;
  }
  // ------------------------------------------------------------------ table lookup
  let table: ArgTable;
  let subName = sub;
  let restTokens = rest;
  let waiterOp: string | undefined;
  if (command === 's3') {
    const raw = modelIndex().commands.s3!.custom!.sub?.[sub];
    if (!raw) throw parseError(`s3: unknown command at ${at(inp.subTok)}`, { index: inp.subTok.index });
    table = customArgTable(raw);
  } else if (command === 'logs' && sub === 'tail') {
    table = LOGS_TAIL_V2;
  } else {
    const raw = inp.model!.custom[sub]!;
    if (sub === 'wait') {
      const [wTok, ...more] = rest;
      if (!wTok) throw parseError(`${command} wait: missing waiter name`);
      if (wTok.text === 'help') return emptyResult(inp.argv, [...g.canonical, command, sub, 'help'], 'no_api_call', command, sub, g.values, region);
      const wraw = raw.sub?.[wTok.text];
      waiterOp = inp.model!.waiters[wTok.text];
      if (!wraw || !waiterOp) throw parseError(`${command} wait: unknown waiter at ${at(wTok)}`, { index: wTok.index });
      subName = `wait ${wTok.text}`;
      restTokens = more;
      table = customArgTable(wraw);
      // waiter arguments are the operation's own API members plus --cli-input-json / skeleton
      for (const spec of table.options.values()) if (spec.name === 'generate-cli-skeleton') spec.literal = true;
    } else {
      table = customArgTable(raw);
    }
  }
  const args = parseArgTable(restTokens, table, where);
  const canonicalArgv = [...g.canonical, command, ...subName.split(' '), ...canonicalArgs(args)];
  if (args.help) return emptyResult(inp.argv, [...g.canonical, command, ...subName.split(' '), 'help'], 'no_api_call', command, subName, g.values, region);
  if (args.options.has('generate-cli-skeleton')) return emptyResult(inp.argv, canonicalArgv, 'no_api_call', command, subName, g.values, region);
  let h: Handled;
  if (command === 's3') {
    const r = s3Command(sub, args, c, inp.ctx, where);
    // s3 arguments can still load files (e.g. --metadata file://…) through the CLI's paramfile rule.
    customOpts(args, inp, where);
    inp.st.files.push(...r.files);
    h = { service: 's3', operation: r.operation, apiCalls: r.apiCalls, permissions: r.permissions, risks: r.risks, params: r.params };
  } else if (waiterOp) {
    const params: Record<string, unknown> = {};
    for (const a of args.options.values()) if (a.spec.member) params[a.spec.member] = decodeValue(a.spec, a.value, inp.st, `${where} ${at(a.token)}`);
    const perms = operationPermissions({ service: inp.model!.service, prefix: inp.model!.prefix, api: waiterOp }, params, c, where);
    h = { service: inp.model!.service, operation: waiterOp, apiCalls: [waiterOp], permissions: perms, risks: [], params };
  } else {
    h = otherCustom(command, sub, customOpts(args, inp, where), inp, where);
  }
  const r = emptyResult(inp.argv, canonicalArgv, h.kind ?? 'custom', command, subName, g.values, region);
  r.service = h.service;
  r.operation = h.operation;
  r.apiCalls = h.apiCalls;
  r.permissions = mergePermissions(h.permissions);
  r.params = h.params ?? {};
  r.files = inp.st.files;
  r.notes = inp.st.notes;
  if (Object.keys(inp.st.cliArgs).length) r.cliArgs = inp.st.cliArgs;
  inp.risks.push(...h.risks);
  return r;
}

function otherCustom(command: string, sub: string, o: Opts, inp: CustomInput, where: string): Handled {
  const c = inp.c;
  const P = (action: string, params: Record<string, unknown> = {}) => permission(action, params, c);
  const star = (action: string): Permission => ({ action, resources: ['*'], derived: false });
  switch (`${command} ${sub}`) {
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
      if (o['dry-run'] !== true) inp.st.files.push({ path: expandPath(s(o.kubeconfig) ?? '~/.kube/config', inp.ctx, where), mode: 'write', argument: '--kubeconfig' });
      const perms = [P('eks:DescribeCluster', { name: o.name })];
      const risks: RiskSignal[] = ['config_change'];
      // --assume-role-arn: the CLI first calls sts:AssumeRole and describes the cluster with those credentials
      // (awscli/customizations/eks/update_kubeconfig.py); --role-arn is only written into the kubeconfig.
      if (s(o['assume-role-arn'])) {
        perms.push(P('sts:AssumeRole', { RoleArn: o['assume-role-arn'] }));
        risks.push('credential_minting');
      }
      return { service: 'eks', operation: 'DescribeCluster', apiCalls: s(o['assume-role-arn']) ? ['sts.AssumeRole', 'DescribeCluster'] : ['DescribeCluster'], permissions: perms, risks };
    }
    case 'rds generate-db-auth-token': {
      const user = s(o.username) ?? '*';
      return {
        service: 'rds',
        operation: null,
        apiCalls: [],
        permissions: [{ action: 'rds-db:connect', resources: [`arn:${c.partition}:rds-db:${c.region}:${c.account}:dbuser:*/${iamLiteral(String(user))}`], derived: true }],
        risks: ['credential_minting'],
      };
    }
    case 'deploy push': {
      const loc = s(o['s3-location']) ?? '';
      const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(loc);
      if (!m) throw parseError(`${where}: --s3-location must be s3://bucket/key`);
      if (s(o.source)) inp.st.files.push({ path: expandPath(o.source as string, inp.ctx, where), mode: 'read', argument: '--source' });
      return {
        service: 'codedeploy',
        operation: 'RegisterApplicationRevision',
        apiCalls: ['s3.PutObject', 'codedeploy.RegisterApplicationRevision'],
        permissions: [
          { action: 's3:PutObject', resources: [`arn:${c.partition}:s3:::${iamLiteral(m[1]!)}/${iamLiteral(m[2]!)}`], derived: true },
          { action: 'codedeploy:RegisterApplicationRevision', resources: [`arn:${c.partition}:codedeploy:${c.region}:${c.account}:application:${iamLiteral(String(o['application-name']))}`], derived: true },
        ],
        risks: ['write', 'local_file_read'],
      };
    }
    case 'cloudformation deploy': {
      const stack = { StackName: o['stack-name'] };
      const perms = ['cloudformation:DescribeStacks', 'cloudformation:CreateChangeSet', 'cloudformation:DescribeChangeSet', 'cloudformation:GetTemplateSummary'].map((a) => P(a, stack));
      if (o['no-execute-changeset'] !== true) perms.push(P('cloudformation:ExecuteChangeSet', stack));
      if (s(o['role-arn'])) perms.push({ action: 'iam:PassRole', resources: [o['role-arn'] as string], derived: true });
      if (s(o['s3-bucket'])) perms.push({ action: 's3:PutObject', resources: [`arn:${c.partition}:s3:::${iamLiteral(String(o['s3-bucket']))}/*`], derived: true });
      if (s(o['template-file'])) inp.st.files.push({ path: expandPath(o['template-file'] as string, inp.ctx, where), mode: 'read', argument: '--template-file' });
      const caps = Array.isArray(o.capabilities) ? (o.capabilities as string[]) : [];
      return {
        service: 'cloudformation',
        operation: 'CreateChangeSet',
        apiCalls: ['DescribeStacks', 'CreateChangeSet', 'DescribeChangeSet', 'ExecuteChangeSet'],
        permissions: perms,
        risks: ['write', 'local_file_read', ...(caps.some((x) => /IAM/.test(x)) ? (['iam_change'] as RiskSignal[]) : [])],
      };
    }
    case 'cloudformation package': {
      const b = s(o['s3-bucket']);
      if (s(o['template-file'])) inp.st.files.push({ path: expandPath(o['template-file'] as string, inp.ctx, where), mode: 'read', argument: '--template-file' });
      if (s(o['output-template-file'])) inp.st.files.push({ path: expandPath(o['output-template-file'] as string, inp.ctx, where), mode: 'write', argument: '--output-template-file' });
      const res = b ? [`arn:${c.partition}:s3:::${iamLiteral(String(b))}/${s(o['s3-prefix']) ? `${iamLiteral(String(o['s3-prefix']))}/` : ''}*`] : ['*'];
      return {
        service: 's3',
        operation: 'PutObject',
        apiCalls: ['HeadObject', 'PutObject'],
        permissions: [
          { action: 's3:GetObject', resources: res, derived: !!b },
          { action: 's3:PutObject', resources: res, derived: !!b },
        ],
        risks: ['write', 'local_file_read'],
      };
    }
    case 'emr create-default-roles': {
      const roles = ['EMR_DefaultRole', 'EMR_EC2_DefaultRole'].map((n) => iamRole(c, n));
      const prof = `arn:${c.partition}:iam::${c.account}:instance-profile/EMR_EC2_DefaultRole`;
      const risks: RiskSignal[] = ['iam_change', 'write'];
      if (o['iam-endpoint'] !== undefined) risks.push('endpoint_override');
      return {
        service: 'iam',
        operation: 'CreateRole',
        apiCalls: ['iam.GetRole', 'iam.CreateRole', 'iam.AttachRolePolicy', 'iam.GetInstanceProfile', 'iam.CreateInstanceProfile', 'iam.AddRoleToInstanceProfile'],
        permissions: [
          ...['iam:GetRole', 'iam:CreateRole', 'iam:AttachRolePolicy'].map((a) => ({ action: a, resources: roles, derived: true })),
          ...['iam:GetInstanceProfile', 'iam:CreateInstanceProfile', 'iam:AddRoleToInstanceProfile'].map((a) => ({ action: a, resources: [prof], derived: true })),
          { action: 'iam:GetPolicy', resources: [`arn:${c.partition}:iam::aws:policy/*`], derived: true },
          { action: 'iam:GetPolicyVersion', resources: [`arn:${c.partition}:iam::aws:policy/*`], derived: true },
        ],
        risks,
      };
    }
    case 'emr-containers update-role-trust-policy': {
      const role = iamRole(c, String(o['role-name'] ?? '*'));
      return {
        service: 'iam',
        operation: 'UpdateAssumeRolePolicy',
        apiCalls: ['iam.GetRole', 'iam.UpdateAssumeRolePolicy'],
        permissions: [
          { action: 'iam:GetRole', resources: [role], derived: true },
          { action: 'iam:UpdateAssumeRolePolicy', resources: [role], derived: true },
        ],
        risks: ['iam_change', 'write', ...(o['iam-endpoint'] !== undefined ? (['endpoint_override'] as RiskSignal[]) : [])],
      };
    }
    case 'logs tail': {
      const group = String(o.group_name);
      return {
        service: 'logs',
        operation: 'FilterLogEvents',
        apiCalls: ['FilterLogEvents'],
        permissions: [P('logs:FilterLogEvents', { logGroupName: group })],
        risks: ['read_only'],
      };
    }
    case 'logs start-live-tail':
      return {
        service: 'logs',
        operation: 'StartLiveTail',
        apiCalls: ['StartLiveTail'],
        permissions: [P('logs:StartLiveTail', { logGroupIdentifiers: o['log-group-identifiers'] })],
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
      if (s(o['private-key'])) inp.st.files.push({ path: expandPath(String(o['private-key']), inp.ctx, where), mode: 'read', argument: '--private-key' });
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
      if (s(o['key-pair-file'])) inp.st.files.push({ path: expandPath(String(o['key-pair-file']), inp.ctx, where), mode: 'read', argument: '--key-pair-file' });
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
        permissions: ['DescribeCluster', 'ListInstanceGroups', 'ListInstanceFleets', 'ListBootstrapActions'].map((a) => P(`elasticmapreduce:${a}`, { ClusterId: o['cluster-id'] })),
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
      if (s(o['service-role'])) roles.push(String(o['service-role']).startsWith('arn:') ? String(o['service-role']) : iamRole(c, String(o['service-role'])));
      perms.push({ action: 'iam:PassRole', resources: roles.length ? roles : ['*'], derived: roles.length > 0 });
      return { service: 'emr', operation: 'RunJobFlow', apiCalls: ['RunJobFlow'], permissions: perms, risks: ['write'] };
    }
    default:
      throw parseError(`${where}: this CLI customization is not supported by guard-aws (refused rather than guessed)`, { reason: 'unsupported_customization' });
  }
}

export { operationPermissions };
