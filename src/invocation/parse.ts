/**
 * parseInvocation: `aws …` argv → what AWS will be asked (service, operation, IAM actions with their resources,
 * risk signals). Synchronous and table-driven (data/aws-model, data/iam). Anything it cannot fully
 * understand throws GuardError('parse') (exit 64) naming the token at fault: the guard canonicalises or
 * rejects, it never guesses (docs/aws-cli-parsing.md §1).
 */
import { GuardError } from '../errors.js';
import { type ArnContext, partitionOf } from './arns.js';
import { mergePermissions, operationPermissions } from './actions.js';
import { isV2Only, unknownChoiceError, v2OnlyError } from './choices.js';
import { customInvocation } from './customizations.js';
import { type ParsedArgs, type Token, at, classify, parseArgTable, show } from './grammar.js';
import { actionInfo } from './iam-catalog.js';
import { type CliTable, type CommandModel, commandModel, modelIndex } from './model.js';
import { type Globals, type InvocationHead, canonicalArgs, decodeValue, emptyResult, optionTokens } from './result.js';
import { computeRisks } from './risks.js';
import type { InvocationContext, ParsedInvocation, Permission, RiskSignal } from './types.js';
import { type DecodeState, expandPath, loadParamFile, parseError, parseJson, parseYaml } from './values.js';

interface GlobalTable {
  nargs: Map<string, number>;
  names: string[];
}
const globalTables = new Map<string, GlobalTable>();
/** The global options of the table's CLI (its own awscli/data/cli.json, read by the generator), plus --version. */
function globalTable(version: CliTable): GlobalTable {
  let table = globalTables.get(version);
  if (!table) {
    const entries = modelIndex(version).globals as [string, number][];
    table = { nargs: new Map(entries), names: entries.map(([name]) => name) };
    globalTables.set(version, table);
  }
  return table;
}

const REGION_RE = /^[a-z]{2}(-[a-z]+)+-\d+$/;

/** Takes global options from every position, as the CLI's top-level parse_known_args does (docs/aws-cli-parsing.md §2.2). */
function extractGlobals(argv: string[], version: CliTable): Globals {
  const table = globalTable(version);
  const isGlobal = (name: string) => table.nargs.has(name);
  const kinds = argv.map((text) => classify(text, isGlobal, table.names));
  const values: Record<string, string | boolean> = {};
  const order: string[] = [];
  const rest: Token[] = [];
  let abbreviated = false;
  for (let i = 0; i < argv.length; i++) {
    const kind = kinds[i]!;
    const token: Token = { text: argv[i]!, index: i };
    if (kind.kind !== 'O') {
      rest.push(token);
      continue;
    }
    if (kind.abbreviated) abbreviated = true;
    const nargs = table.nargs.get(kind.name)!;
    let value: string | boolean;
    if (nargs === 0) {
      if (kind.inline !== undefined) throw parseError(`--${kind.name} takes no value, at ${at(token)}`, { index: i });
      value = true;
    } else if (kind.inline !== undefined) value = kind.inline;
    else {
      if (i + 1 >= argv.length || kinds[i + 1]!.kind !== 'A') throw parseError(`--${kind.name} expects a value, at ${at(token)}`, { index: i });
      value = argv[++i]!;
    }
    if (kind.name in values) order.splice(order.indexOf(kind.name), 1);
    values[kind.name] = value;
    order.push(kind.name);
  }
  const canonical: string[] = [];
  for (const name of order) canonical.push(...optionTokens(name, values[name]!));
  return { values, canonical, rest, abbreviated };
}

function buildParams(args: ParsedArgs, state: DecodeState, where: string): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const option of args.options.values()) {
    const decode = () => decodeValue(option.spec, option.value, state, `${where} ${at(option.token)}`);
    if (option.spec.member) params[option.spec.member] = decode();
    // --cli-input-* are read by mergeCliInput; the skeleton option has no value to send.
    else if (!/^(cli-input-json|cli-input-yaml|generate-cli-skeleton)$/.test(option.spec.name)) state.cliArgs[option.spec.name] = decode();
  }
  for (const positional of args.positionals) {
    if (positional.spec.name === 'outfile') {
      if (positional.value !== '-') state.files.push({ path: expandPath(String(positional.value), state.ctx, where), mode: 'write', argument: 'outfile' });
    }
    else if (positional.spec.member) params[positional.spec.member] = positional.value;
  }
  return params;
}

/** --cli-input-json / --cli-input-yaml: API members merged under explicit CLI arguments (CLI wins; docs/aws-cli-parsing.md §2.5). */
function mergeCliInput(args: ParsedArgs, params: Record<string, unknown>, state: DecodeState, where: string): boolean {
  const json = args.options.get('cli-input-json');
  const yaml = args.options.get('cli-input-yaml');
  if (json && yaml) throw parseError(`${where}: only one of --cli-input-json and --cli-input-yaml may be given (${at(yaml.token)})`);
  const input = json ?? yaml;
  if (!input || typeof input.value !== 'string') return false;
  const option = `--${input.spec.name}`;
  if (input === yaml && state.ctx.cliVersion !== 'v2') throw parseError(`${where}: --cli-input-yaml exists only in AWS CLI v2, at ${at(input.token)}`, { index: input.token.index });
  const value = input.value;
  let text: string;
  if (/^fileb?:\/\//.test(value)) text = Buffer.from(loadParamFile(value, false, state, option, where), value.startsWith('fileb') ? 'base64' : 'utf8').toString('utf8');
  else if (/^https?:\/\//i.test(value)) throw parseError(`${where}: ${option} accepts only JSON or file:// (${at(input.token)})`);
  else text = value;
  const doc = input === yaml ? parseYaml(text, `${where} --cli-input-yaml`) : parseJson(text, `${where} ${option}`);
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw parseError(`${where}: ${option} must be a JSON object (${at(input.token)})`);
  for (const [member, memberValue] of Object.entries(doc as Record<string, unknown>)) if (!(member in params)) params[member] = memberValue;
  return true;
}

/** Completes a result: SAR spelling and access level of every action, sorted lists, risk signals. */
function finish(result: ParsedInvocation, risksSoFar: RiskSignal[], arnContext: ArnContext): ParsedInvocation {
  const permissions = mergePermissions(result.permissions);
  for (const permission of permissions) {
    const info = actionInfo(permission.action);
    if (!info) throw new GuardError('parse', `IAM action ${permission.action} is not in the Service Authorization Reference`);
    permission.action = info.action;
    result.accessLevels[info.action] = info.accessLevel;
  }
  for (const permission of permissions) for (const resource of permission.resources) assertPrintableResource(resource, result);
  result.permissions = permissions.sort((a, b) => (a.action < b.action ? -1 : a.action > b.action ? 1 : 0));
  result.actions = [...new Set(permissions.map((permission) => permission.action))].sort();
  result.resources = [...new Set(permissions.flatMap((permission) => permission.resources).filter((resource) => resource !== '*'))].sort();
  result.risks = computeRisks(result, risksSoFar, arnContext);
  return result;
}

// C0 controls, DEL, C1 controls and the Unicode line/paragraph separators. No AWS resource name contains one
// (IAM names, bucket names, table names… are restricted character sets; the ARN grammar of the IAM User Guide,
// "IAM identifiers", has none), and a line break in an ARN is one the session policy cannot carry: refusing it
// here makes it a clear 400 naming the parameter instead of a failure while the broker builds the policy.
const CONTROL_IN_NAME = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** Refuses a derived resource with a control character, naming the parameter (or token) it came from. */
function assertPrintableResource(resource: string, result: ParsedInvocation): void {
  const bad = CONTROL_IN_NAME.exec(resource);
  if (!bad) return;
  const where = [result.command, result.subcommand].filter(Boolean).join(' ');
  const codePoint = `U+${bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
  const source = controlSource(result, resource);
  throw parseError(`${where}: ${source} contains a control character (${codePoint}); no resource name may contain one`, {
    reason: 'control_character',
    ...(source.startsWith('parameter ') ? { parameter: source.slice('parameter '.length) } : {}),
  });
}

/** Names what put a control character into a resource: a parameter path (`TableName`, `Item.key`) or a token. */
function controlSource(result: ParsedInvocation, resource: string): string {
  // Depth-bounded (values are at most MAX_VALUE_DEPTH deep, values.ts) and iterative all the same.
  const stack: [string, unknown][] = Object.entries({ ...(result.cliArgs ?? {}), ...result.params });
  while (stack.length) {
    const [path, value] = stack.pop()!;
    if (typeof value === 'string') {
      if (CONTROL_IN_NAME.test(value) && resource.includes(value)) return `parameter ${path}`;
    } else if (Array.isArray(value)) value.forEach((element, i) => stack.push([`${path}[${i}]`, element]));
    else if (value && typeof value === 'object') for (const [member, child] of Object.entries(value)) stack.push([`${path}.${member}`, child]);
  }
  const index = result.argv.findIndex((token) => CONTROL_IN_NAME.test(token));
  return index >= 0 ? `token ${index}` : `resource ${JSON.stringify(resource)}`;
}

/**
 * `ec2 authorize/revoke-security-group-*` --protocol/--port/--cidr/--source-group/--group-owner build one
 * IpPermissions entry (awscli/customizations/ec2/secgroupsimplify.py).
 */
function secGroupShortcut(params: Record<string, unknown>, cliArgs: Record<string, unknown>, where: string): void {
  if (!['protocol', 'port', 'cidr', 'source-group', 'group-owner'].some((name) => cliArgs[name] !== undefined)) return;
  if (params.IpPermissions !== undefined) throw parseError(`${where}: --ip-permissions cannot be combined with --protocol/--port/--cidr/--source-group`);
  const permission: Record<string, unknown> = {};
  const protocol = cliArgs.protocol;
  if (typeof protocol === 'string') permission.IpProtocol = protocol === 'all' ? '-1' : protocol;
  const port = cliArgs.port;
  if (typeof port === 'string') {
    const range = /^(-?\d+)(?:-(\d+))?$/.exec(port);
    if (port === 'all') {
      permission.FromPort = -1;
      permission.ToPort = -1;
    } else if (range) {
      permission.FromPort = Number(range[1]);
      permission.ToPort = Number(range[2] ?? range[1]);
    } else throw parseError(`${where}: --port ${show(port)} is not a port or range`);
  }
  if (typeof cliArgs.cidr === 'string') permission.IpRanges = [{ CidrIp: cliArgs.cidr }];
  const sourceGroup = cliArgs['source-group'];
  const groupOwner = cliArgs['group-owner'];
  if (typeof sourceGroup === 'string' || typeof groupOwner === 'string') {
    const pair: Record<string, unknown> = {};
    if (typeof sourceGroup === 'string') pair[sourceGroup.startsWith('sg-') ? 'GroupId' : 'GroupName'] = sourceGroup;
    if (typeof groupOwner === 'string') pair.UserId = groupOwner;
    permission.UserIdGroupPairs = [pair];
  }
  params.IpPermissions = [permission];
}

// ------------------------------------------------------------------------------------------- memoisation
// Agents repeat the same invocations, and the broker re-parses what the client parsed. parseInvocation is a
// pure function of (argv, account, region, CLI version) whenever no file is read, so such results (and
// refusals) are memoised in a bounded LRU. A hit must cost what a lookup costs (issue 14: deep copies and
// fresh errors with stack traces made a cached parse cost 60–130 µs under load), so every result is a private
// copy, deep-frozen once and then shared: no caller can alter what the next one gets (a write throws in
// strict-mode code, which all of this package is). A refusal is kept as data (code, message, frozen details)
// and each hit throws a new GuardError built without capturing a stack trace: an expected refusal on a hot
// path is answered, not debugged, and its details are the ones the parser produced.
// Invocations that read files (file://, --cli-input-json, s3 cp local paths) are never memoised (their
// results are frozen all the same, so callers see one contract).
const CACHE_MAX = 2000;
type CacheEntry = { ok: ParsedInvocation } | { err: { code: GuardError['code']; message: string; details: Record<string, unknown> } };
const cache = new Map<string, CacheEntry>();

/** A private deep copy of parser output (plain objects, arrays, primitives; byte buffers kept as they are). */
function clonePlain<T>(value: T): T {
  if (Array.isArray(value)) return value.map(clonePlain) as T;
  if (value && typeof value === 'object' && !ArrayBuffer.isView(value)) {
    const copy: Record<string, unknown> = {};
    for (const key in value) copy[key] = clonePlain((value as Record<string, unknown>)[key]);
    return copy as T;
  }
  return value;
}

/** Freezes plain objects and arrays all the way down (byte buffers cannot be frozen and are never shared). */
function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !ArrayBuffer.isView(value) && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  }
  return value;
}

/**
 * Parses an `aws` argv (without the leading `aws`). See the module comment; throws GuardError('parse').
 * The result is deep-frozen and may be shared with other callers: copy what you need to change.
 */
export function parseInvocation(argv: readonly string[], ctx: InvocationContext): ParsedInvocation {
  if (!Array.isArray(argv) || argv.some((token) => typeof token !== 'string')) throw new GuardError('parse', 'argv must be an array of strings');
  // NUL cannot occur in a real argv (C strings; execve would cut the token): refused, which also makes it an
  // unambiguous separator for the cache key below.
  const nul = argv.findIndex((token) => token.includes('\0'));
  if (nul >= 0) throw parseError(`token ${nul} contains a NUL character`, { index: nul });
  const key = `${ctx.account}\0${ctx.region}\0${ctx.cliVersion ?? 'v1'}${ctx.exactOptionNames ? '!' : ''}\0${argv.join('\0')}`;
  const hit = cache.get(key);
  if (hit) {
    cache.delete(key);
    cache.set(key, hit);
    if ('ok' in hit) return hit.ok;
    throw refusalWithoutStack(hit.err);
  }
  let result: ParsedInvocation;
  try {
    // The caller keeps its argv array: the result holds a copy (frozen below, never the caller's).
    result = parseInvocationUncached([...argv], ctx);
  } catch (e) {
    if (e instanceof GuardError && !argv.some((token) => token.includes('://'))) {
      remember(key, { err: { code: e.code, message: e.message, details: deepFreeze(clonePlain(e.details)) } });
    }
    throw e;
  }
  const shared = deepFreeze(clonePlain(result));
  if (result.files.length === 0) remember(key, { ok: shared });
  return shared;
}

/** A GuardError for a memoised refusal; capturing a stack trace would cost more than the whole lookup. */
function refusalWithoutStack(err: { code: GuardError['code']; message: string; details: Record<string, unknown> }): GuardError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new GuardError(err.code, err.message, { details: err.details });
  } finally {
    Error.stackTraceLimit = limit;
  }
}

function remember(key: string, entry: CacheEntry): void {
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value as string);
  cache.set(key, entry);
}

/** parseInvocation without memoisation (benchmarks, tests). */
export function parseInvocationUncached(argv: string[], ctx: InvocationContext): ParsedInvocation {
  const result = parseWithTable(argv, ctx);
  if (ctx.exactOptionNames) assertExactNames(argv, result);
  return result;
}

/**
 * Version skew (docs/aws-cli-parsing.md §6.3): the CLI that will run is a newer minor release than the table.
 * It has every option the table has, and maybe more: an abbreviation unique in the table could be ambiguous in
 * that CLI, or mean one of its new options, so the caller would not get the call they typed. Every option must
 * then be written in full. A token starting with `--` (and without a space) is always an option to argparse;
 * its name must be one of the canonical argv's option names, which are all full names.
 */
function assertExactNames(argv: string[], result: ParsedInvocation): void {
  const full = new Set(result.canonicalArgv.filter((token) => token.startsWith('--')).map((token) => token.slice(2).split('=')[0]));
  argv.forEach((token, index) => {
    if (!token.startsWith('--') || token.length === 2 || /\s/.test(token)) return;
    const name = token.slice(2).split('=')[0]!;
    if (!full.has(name)) {
      throw parseError(
        `${token.split('=')[0]} is an abbreviation, at token ${index}: the aws that will run is a newer release than guard-aws's command tables, where it may name another option; write the option in full`,
        { index, token: token.split('=')[0], reason: 'abbreviation_under_version_skew' },
      );
    }
  });
}

function parseWithTable(argv: string[], ctx: InvocationContext): ParsedInvocation {
  if (!Array.isArray(argv) || argv.some((token) => typeof token !== 'string')) throw new GuardError('parse', 'argv must be an array of strings');
  if (argv.length > 4096) throw parseError(`argv has ${argv.length} tokens; at most 4096 are accepted`);
  const version = ctx.cliVersion ?? 'v1';
  for (let i = 0; i < argv.length; i++) {
    // `--` ends option parsing differently across Python versions (docs/aws-cli-parsing.md §2.3): refused.
    if (argv[i] === '--') throw parseError(`"--" is not accepted inside an aws invocation, at token ${i}`, { index: i, token: '--' });
  }
  const globals = extractGlobals(argv, version);
  const givenRegion = globals.values.region;
  if (typeof givenRegion === 'string' && !REGION_RE.test(givenRegion)) throw parseError(`--region ${show(givenRegion)} is not a region name`);
  const region = typeof givenRegion === 'string' ? givenRegion : ctx.region;
  // v2's auto-prompt (awscli/autoprompt) opens an interactive editor that rewrites the command line after
  // guard-aws has decided on it: refused (docs/aws-cli-parsing.md §2.2). The sealed run also turns it off.
  if (globals.values['cli-auto-prompt'] === true) throw parseError('--cli-auto-prompt is interactive (it edits the command after guard-aws decided on it): write the full command instead', { reason: 'interactive' });
  const binaryFormat = globals.values['cli-binary-format'];
  // v2 awscli/data/cli.json: the only two choices; argparse would refuse anything else.
  if (binaryFormat !== undefined && binaryFormat !== 'base64' && binaryFormat !== 'raw-in-base64-out') throw parseError(`--cli-binary-format ${show(String(binaryFormat))} must be base64 or raw-in-base64-out`);
  const head: InvocationHead = { argv, globals, region };
  const arnContext: ArnContext = { partition: partitionOf(region), region, account: ctx.account, foreignAccounts: new Set() };
  const decode: DecodeState = { ctx, files: [], notes: [], cliArgs: {} };
  if (globals.abbreviated) decode.notes.push('abbreviated global option expanded');
  /** A result that calls nothing (help, --version, skeletons): canonical argv = globals + `tail`. */
  const noCall = (tail: string[], command: string, subcommand: string | null, note?: string): ParsedInvocation => {
    const result = emptyResult(head, [...globals.canonical, ...tail], 'no_api_call', command, subcommand);
    if (note) result.notes.push(note);
    return finish(result, [], arnContext);
  };

  if (globals.values.version === true) return noCall([], '', null, '--version prints the CLI version and exits');
  const [commandToken, subcommandToken, ...rest] = globals.rest;
  if (!commandToken) throw parseError('no aws command given');
  const command = commandToken.text;
  if (command.startsWith('-')) throw parseError(`unknown option at ${at(commandToken)}`, { index: commandToken.index, token: command });
  if (command === 'help') return noCall(['help'], 'help', null);
  const index = modelIndex(version);
  const entry = Object.prototype.hasOwnProperty.call(index.commands, command) ? index.commands[command] : undefined;
  if (!entry) {
    if (isV2Only(command)) throw v2OnlyError(command, commandToken, version);
    throw unknownChoiceError(`unknown aws command at ${at(commandToken)} (aliases and plugins are not supported)`, commandToken, [...Object.keys(index.commands), 'help']);
  }
  if (!subcommandToken) {
    if (command === 'configure') {
      // Bare `aws configure` prompts for and writes credentials and region: a local config change.
      return finish(emptyResult(head, [...globals.canonical, command], 'local', command, null), ['config_change'], arnContext);
    }
    throw parseError(`${command}: missing operation after ${at(commandToken)}`, { index: commandToken.index });
  }
  const subcommand = subcommandToken.text;
  if (subcommand === 'help') return noCall([command, 'help'], command, 'help');
  if (subcommand.startsWith('-')) throw parseError(`${command}: expected an operation, got option at ${at(subcommandToken)}`, { index: subcommandToken.index });

  const custom = (model: CommandModel | undefined): ParsedInvocation => {
    const outcome = customInvocation({ head, command, subcommand: subcommandToken, rest, model, arnContext, decode });
    return finish(outcome.result, outcome.risks, arnContext);
  };
  if (entry.local || command === 's3') return custom(undefined);
  const model = commandModel(command, version)!;
  const operation = model.operation(subcommand);
  if (!operation) {
    if (Object.prototype.hasOwnProperty.call(model.custom, subcommand)) return custom(model);
    if (isV2Only(command, subcommand)) throw v2OnlyError(`${command} ${subcommand}`, subcommandToken, version);
    const choices = [...model.operationNames(), ...Object.keys(model.custom), 'help'];
    throw unknownChoiceError(`${command}: unknown operation at ${at(subcommandToken)}`, subcommandToken, choices);
  }
  const where = `${command} ${subcommand}`;
  const args = parseArgTable(rest, operation.args, where);
  const canonicalArgv = [...globals.canonical, command, subcommand, ...canonicalArgs(args)];
  if (args.help) return noCall([command, subcommand, 'help'], command, subcommand);
  if (args.options.has('generate-cli-skeleton')) {
    const result = emptyResult(head, canonicalArgv, 'no_api_call', command, subcommand);
    result.notes.push('--generate-cli-skeleton prints a skeleton without calling AWS');
    return finish(result, [], arnContext);
  }
  if ([...args.options.values()].some((option) => option.abbreviated)) decode.notes.push('abbreviated option expanded');
  if (args.repeated.length) decode.notes.push(`repeated option(s) ${args.repeated.map((name) => `--${name}`).join(', ')}: the last one wins`);
  const params = buildParams(args, decode, where);
  if (command === 'ec2' && /^(authorize|revoke)-security-group-(ingress|egress)$/.test(subcommand)) secGroupShortcut(params, decode.cliArgs, where);
  const risks: RiskSignal[] = mergeCliInput(args, params, decode, where) ? ['hidden_input'] : [];
  const operationRef = { service: model.service, prefix: model.prefix, api: operation.api, ...(operation.http ? { http: operation.http } : {}) };
  const permissions: Permission[] = operationPermissions(operationRef, params, arnContext, where);
  const result = emptyResult(head, canonicalArgv, 'api', command, subcommand);
  result.service = model.service;
  result.operation = operation.api;
  result.apiCalls = [operation.api];
  result.params = params;
  result.permissions = permissions;
  result.files = decode.files;
  result.notes = decode.notes;
  if (Object.keys(decode.cliArgs).length) result.cliArgs = decode.cliArgs;
  return finish(result, risks, arnContext);
}
