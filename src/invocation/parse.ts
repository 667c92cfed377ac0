/**
 * parseInvocation: `aws …` argv → what AWS will be asked (service, operation, IAM actions with their resources,
 * risk signals). Synchronous and table-driven (data/aws-model, data/iam). Anything it cannot fully
 * understand throws GuardError('parse') (exit 64) naming the token at fault: the guard canonicalises or
 * rejects, it never guesses (reference §1.7).
 */
import { GuardError } from '../errors.js';
import { type ArnContext, partitionOf } from './arns.js';
import { mergePermissions, operationPermissions, permission } from './actions.js';
import { customInvocation } from './customizations.js';
import { type ParsedArgs, type Token, at, classify, parseArgTable, show } from './grammar.js';
import { actionInfo } from './iam-catalog.js';
import { type ArgSpec, type CommandModel, buildArgTable, commandModel, customArgTable, modelIndex } from './model.js';
import { computeRisks } from './risks.js';
import type { AccessLevel, InvocationContext, LocalFile, ParsedInvocation, Permission, RiskSignal } from './types.js';
import { type DecodeState, decodeStructured, expandPath, loadParamFile, parseError, parseJson, parseYaml } from './values.js';

/** Global options added by AWS CLI v2 (v2 awscli/data/cli.json), as [name, nargs]. */
const V2_GLOBALS: [string, number][] = [
  ['cli-binary-format', 1],
  ['no-cli-pager', 0],
  ['cli-auto-prompt', 0],
  ['no-cli-auto-prompt', 0],
  ['cli-error-format', 1],
];
const V1_ONLY_GLOBALS = new Set(['v2-debug']);

interface GlobalTable {
  nargs: Map<string, number>;
  names: string[];
}
const globalTables = new Map<string, GlobalTable>();
function globalTable(version: 'v1' | 'v2'): GlobalTable {
  let t = globalTables.get(version);
  if (!t) {
    const entries = modelIndex().globals.filter(([n]) => version === 'v1' || !V1_ONLY_GLOBALS.has(n)) as [string, number][];
    if (version === 'v2') entries.push(...V2_GLOBALS);
    t = { nargs: new Map(entries), names: entries.map(([n]) => n) };
    globalTables.set(version, t);
  }
  return t;
}

const REGION_RE = /^[a-z]{2}(-[a-z]+)+-\d+$/;

function shell(argv: string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

interface Globals {
  values: Record<string, string | boolean>;
  canonical: string[];
  rest: Token[];
  abbreviated: boolean;
}

/** Takes global options from every position, as the CLI's top-level parse_known_args does (reference §1.3). */
function extractGlobals(argv: string[], version: 'v1' | 'v2'): Globals {
  const t = globalTable(version);
  const has = (n: string) => t.nargs.has(n);
  const kinds = argv.map((a) => classify(a, has, t.names));
  const values: Record<string, string | boolean> = {};
  const order: string[] = [];
  const rest: Token[] = [];
  let abbreviated = false;
  for (let i = 0; i < argv.length; i++) {
    const k = kinds[i]!;
    if (k.kind !== 'O') {
      rest.push({ text: argv[i]!, index: i });
      continue;
    }
    const tok = { text: argv[i]!, index: i };
    if (k.abbreviated) abbreviated = true;
    const nargs = t.nargs.get(k.name)!;
    let value: string | boolean;
    if (nargs === 0) {
      if (k.inline !== undefined) throw parseError(`--${k.name} takes no value, at ${at(tok)}`, { index: i });
      value = true;
    } else if (k.inline !== undefined) value = k.inline;
    else {
      if (i + 1 >= argv.length || kinds[i + 1]!.kind !== 'A') throw parseError(`--${k.name} expects a value, at ${at(tok)}`, { index: i });
      value = argv[++i]!;
    }
    if (k.name in values) order.splice(order.indexOf(k.name), 1);
    values[k.name] = value;
    order.push(k.name);
  }
  const canonical: string[] = [];
  for (const n of order) canonical.push(...optionTokens(n, values[n]!));
  return { values, canonical, rest, abbreviated };
}

function emptyResult(argv: string[], canonicalArgv: string[], kind: ParsedInvocation['kind'], command: string, subcommand: string | null, globals: Record<string, string | boolean>, region: string): ParsedInvocation {
  return {
    argv: [...argv],
    canonicalArgv,
    kind,
    command,
    subcommand,
    service: null,
    operation: null,
    apiCalls: [],
    params: {},
    globals,
    region,
    permissions: [],
    actions: [],
    resources: [],
    accessLevels: {},
    risks: [],
    files: [],
    notes: [],
  };
}

/**
 * `--name value` as two tokens (the CLI itself looks for the exact token `--cli-input-json` to relax required
 * arguments, so `--name=value` is not always equivalent); values starting with "-" keep the `--name=value`
 * form so no parser can take them for an option.
 */
function optionTokens(name: string, value: string | string[] | boolean | null): string[] {
  const n = `--${name}`;
  if (value === true || value === false || value === null) return [n];
  if (Array.isArray(value)) {
    if (value.length === 1 && value[0]!.startsWith('-')) return [`${n}=${value[0]}`];
    return [n, ...value];
  }
  return value.startsWith('-') ? [`${n}=${value}`] : [n, value];
}

/** Canonical tokens of parsed arguments: positionals first, then full option names (no re-reading possible). */
function canonicalArgs(args: ParsedArgs): string[] {
  const out: string[] = [];
  for (const p of args.positionals) out.push(...(Array.isArray(p.value) ? p.value : [p.value]));
  for (const a of args.options.values()) out.push(...optionTokens(a.spec.name, a.value));
  return out;
}

/** Decodes one parsed argument into its API value (paramfile → JSON/shorthand → scalar; reference §1.4). */
function decodeValue(spec: ArgSpec, value: ParsedArgs['options'] extends Map<string, infer V> ? V extends { value: infer X } ? X : never : never, st: DecodeState, where: string): unknown {
  const arg = `--${spec.name}`;
  if (typeof value === 'boolean') return value;
  if (value === null) return null;
  if (Array.isArray(value)) {
    // A one-element list is treated like a scalar for paramfiles (paramfile.py _check_for_uri_param).
    const vals = value.length === 1 ? [loadParamFile(value[0]!, spec.literal, st, arg, where)] : value.map((v) => {
      if (/^(https?|fileb?):\/\//i.test(v) && !spec.literal) throw parseError(`${where}: ${arg} list element ${show(v)} is not loaded by the CLI and is refused`);
      return v;
    });
    if (spec.type === 'L' || spec.type === 'l') {
      if (vals.length === 1 && /^\s*\[/.test(vals[0]!)) return parseJson(vals[0]!, `${where} ${arg}`);
      if (spec.type === 'L') return vals.map((v) => decodeStructured(v, st, arg, `${where} ${arg}`));
    }
    return vals;
  }
  const raw = loadParamFile(value, spec.literal, st, arg, where);
  switch (spec.type) {
    case 'S':
    case 'd':
      return decodeStructured(raw, st, arg, `${where} ${arg}`);
    case 'i':
    case 'f': {
      const n = Number(raw);
      if (raw.trim() === '' || Number.isNaN(n)) throw parseError(`${where}: ${arg} expects a number, got ${show(raw)}`);
      return n;
    }
    case 'P': {
      // Streaming blob: the value is a path the CLI opens and uploads (local file read).
      st.files.push({ path: expandPath(raw, st.ctx, where), mode: 'read', argument: arg });
      return raw;
    }
    default:
      return raw;
  }
}

function buildParams(args: ParsedArgs, st: DecodeState, where: string): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const a of args.options.values()) {
    if (!a.spec.member) {
      if (!/^(cli-input-json|cli-input-yaml|generate-cli-skeleton)$/.test(a.spec.name)) st.cliArgs[a.spec.name] = decodeValue(a.spec, a.value, st, `${where} ${at(a.token)}`);
      continue;
    }
    params[a.spec.member] = decodeValue(a.spec, a.value, st, `${where} ${at(a.token)}`);
  }
  for (const p of args.positionals) {
    if (p.spec.name === 'outfile') {
      if (p.value !== '-') st.files.push({ path: expandPath(String(p.value), st.ctx, where), mode: 'write', argument: 'outfile' });
    }
    else if (p.spec.member) params[p.spec.member] = p.value;
  }
  return params;
}

/** --cli-input-json / --cli-input-yaml: API members merged under explicit CLI arguments (CLI wins; §1.5). */
function mergeCliInput(args: ParsedArgs, params: Record<string, unknown>, st: DecodeState, where: string): boolean {
  const j = args.options.get('cli-input-json');
  const y = args.options.get('cli-input-yaml');
  if (j && y) throw parseError(`${where}: only one of --cli-input-json and --cli-input-yaml may be given (${at(y.token)})`);
  const a = j ?? y;
  if (!a || typeof a.value !== 'string') return false;
  if (a === y && st.ctx.cliVersion !== 'v2') throw parseError(`${where}: --cli-input-yaml exists only in AWS CLI v2, at ${at(a.token)}`, { index: a.token.index });
  const v = a.value;
  let text: string;
  if (/^fileb?:\/\//.test(v)) text = Buffer.from(loadParamFile(v, false, st, `--${a.spec.name}`, where), v.startsWith('fileb') ? 'base64' : 'utf8').toString('utf8');
  else if (/^https?:\/\//i.test(v)) throw parseError(`${where}: --${a.spec.name} accepts only JSON or file:// (${at(a.token)})`);
  else text = v;
  const doc = a === y ? parseYaml(text, `${where} --cli-input-yaml`) : parseJson(text, `${where} --${a.spec.name}`);
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw parseError(`${where}: --${a.spec.name} must be a JSON object (${at(a.token)})`);
  for (const [k, val] of Object.entries(doc as Record<string, unknown>)) if (!(k in params)) params[k] = val;
  return true;
}

function finish(res: ParsedInvocation, risksIn: RiskSignal[], c: ArnContext): ParsedInvocation {
  const perms = mergePermissions(res.permissions);
  for (const p of perms) {
    const info = actionInfo(p.action);
    if (!info) throw new GuardError('parse', `IAM action ${p.action} is not in the Service Authorization Reference`);
    p.action = info.action;
    res.accessLevels[info.action] = info.accessLevel;
  }
  res.permissions = perms.sort((a, b) => (a.action < b.action ? -1 : a.action > b.action ? 1 : 0));
  res.actions = [...new Set(perms.map((p) => p.action))].sort();
  res.resources = [...new Set(perms.flatMap((p) => p.resources).filter((r) => r !== '*'))].sort();
  res.risks = computeRisks(res, risksIn, c);
  return res;
}

/**
 * `ec2 authorize/revoke-security-group-*` --protocol/--port/--cidr/--source-group/--group-owner build one
 * IpPermissions entry (awscli/customizations/ec2/secgroupsimplify.py).
 */
function secGroupShortcut(params: Record<string, unknown>, cli: Record<string, unknown>, where: string): void {
  if (!['protocol', 'port', 'cidr', 'source-group', 'group-owner'].some((k) => cli[k] !== undefined)) return;
  if (params.IpPermissions !== undefined) throw parseError(`${where}: --ip-permissions cannot be combined with --protocol/--port/--cidr/--source-group`);
  const perm: Record<string, unknown> = {};
  const proto = cli.protocol;
  if (typeof proto === 'string') perm.IpProtocol = proto === 'all' ? '-1' : proto;
  if (typeof cli.port === 'string') {
    const m = /^(-?\d+)(?:-(\d+))?$/.exec(cli.port);
    if (cli.port === 'all') {
      perm.FromPort = -1;
      perm.ToPort = -1;
    } else if (m) {
      perm.FromPort = Number(m[1]);
      perm.ToPort = Number(m[2] ?? m[1]);
    } else throw parseError(`${where}: --port ${show(cli.port)} is not a port or range`);
  }
  if (typeof cli.cidr === 'string') perm.IpRanges = [{ CidrIp: cli.cidr }];
  if (typeof cli['source-group'] === 'string' || typeof cli['group-owner'] === 'string') {
    const pair: Record<string, unknown> = {};
    const sg = cli['source-group'];
    if (typeof sg === 'string') pair[sg.startsWith('sg-') ? 'GroupId' : 'GroupName'] = sg;
    if (typeof cli['group-owner'] === 'string') pair.UserId = cli['group-owner'];
    perm.UserIdGroupPairs = [pair];
  }
  params.IpPermissions = [perm];
}

// ------------------------------------------------------------------------------------------- memoisation
// Agents repeat the same invocations, and the broker re-parses what the client parsed. parseInvocation is a
// pure function of (argv, account, region, CLI version) whenever no file is read, so such results (and
// errors) are memoised in a bounded LRU and handed out as fresh copies: callers may mutate what they get.
// Invocations that read files (file://, --cli-input-json, s3 cp local paths) are never memoised.
const CACHE_MAX = 2000;
type CacheEntry = { ok: ParsedInvocation } | { err: { code: GuardError['code']; message: string; details: Record<string, unknown> } };
const cache = new Map<string, CacheEntry>();

function clonePlain<T>(v: T): T {
  if (Array.isArray(v)) return v.map(clonePlain) as T;
  if (v && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const k in v) o[k] = clonePlain((v as Record<string, unknown>)[k]);
    return o as T;
  }
  return v;
}

/** Parses an `aws` argv (without the leading `aws`). See the module comment; throws GuardError('parse'). */
export function parseInvocation(argv: string[], ctx: InvocationContext): ParsedInvocation {
  if (!Array.isArray(argv) || argv.some((a) => typeof a !== 'string')) throw new GuardError('parse', 'argv must be an array of strings');
  // NUL cannot occur in a real argv (C strings; execve would cut the token): refused, which also makes it an
  // unambiguous separator for the cache key below.
  const nul = argv.findIndex((a) => a.includes('\0'));
  if (nul >= 0) throw parseError(`token ${nul} contains a NUL character`, { index: nul });
  const key = `${ctx.account}\0${ctx.region}\0${ctx.cliVersion ?? 'v1'}\0${argv.join('\0')}`;
  const hit = cache.get(key);
  if (hit) {
    cache.delete(key);
    cache.set(key, hit);
    if ('ok' in hit) return clonePlain(hit.ok);
    throw new GuardError(hit.err.code, hit.err.message, { details: { ...hit.err.details } });
  }
  let res: ParsedInvocation;
  try {
    res = parseInvocationUncached(argv, ctx);
  } catch (e) {
    if (e instanceof GuardError && !argv.some((a) => a.includes('://'))) remember(key, { err: { code: e.code, message: e.message, details: { ...e.details } } });
    throw e;
  }
  if (res.files.length === 0) remember(key, { ok: clonePlain(res) });
  return res;
}

function remember(key: string, entry: CacheEntry): void {
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value as string);
  cache.set(key, entry);
}

/** parseInvocation without memoisation (benchmarks, tests). */
export function parseInvocationUncached(argv: string[], ctx: InvocationContext): ParsedInvocation {
  if (!Array.isArray(argv) || argv.some((a) => typeof a !== 'string')) throw new GuardError('parse', 'argv must be an array of strings');
  if (argv.length > 4096) throw parseError(`argv has ${argv.length} tokens; at most 4096 are accepted`);
  const version = ctx.cliVersion ?? 'v1';
  for (let i = 0; i < argv.length; i++) {
    // `--` ends option parsing differently across Python versions (reference §1.3.6): refused.
    if (argv[i] === '--') throw parseError(`"--" is not accepted inside an aws invocation, at token ${i}`, { index: i, token: '--' });
  }
  const g = extractGlobals(argv, version);
  const region = typeof g.values.region === 'string' ? g.values.region : ctx.region;
  if (typeof g.values.region === 'string' && !REGION_RE.test(g.values.region)) throw parseError(`--region ${show(g.values.region)} is not a region name`);
  const c: ArnContext = { partition: partitionOf(region), region, account: ctx.account, foreignAccounts: new Set() };
  const st: DecodeState = { ctx, files: [], notes: [], cliArgs: {} };
  const risks: RiskSignal[] = [];
  if (g.abbreviated) st.notes.push('abbreviated global option expanded');

  if (g.values.version === true) {
    const r = emptyResult(argv, [...g.canonical], 'no_api_call', '', null, g.values, region);
    r.notes.push('--version prints the CLI version and exits');
    return finish(r, risks, c);
  }
  const [cmdTok, subTok, ...rest] = g.rest;
  if (!cmdTok) throw parseError('no aws command given');
  const command = cmdTok.text;
  if (command.startsWith('-')) throw parseError(`unknown option at ${at(cmdTok)}`, { index: cmdTok.index, token: command });
  if (command === 'help') return finish(emptyResult(argv, [...g.canonical, 'help'], 'no_api_call', 'help', null, g.values, region), risks, c);
  const index = modelIndex();
  const entry = Object.prototype.hasOwnProperty.call(index.commands, command) ? index.commands[command] : undefined;
  if (!entry) {
    throw parseError(`unknown aws command at ${at(cmdTok)} (aliases and plugins are not supported)`, { index: cmdTok.index, token: command });
  }
  const sub = subTok?.text ?? null;
  if (!subTok && command === 'configure') {
    // Bare `aws configure` prompts for and writes credentials and region: a local config change.
    const r = emptyResult(argv, [...g.canonical, command], 'local', command, null, g.values, region);
    risks.push('config_change');
    return finish(r, risks, c);
  }
  if (!subTok) throw parseError(`${command}: missing operation after ${at(cmdTok)}`, { index: cmdTok.index });
  if (sub === 'help') return finish(emptyResult(argv, [...g.canonical, command, 'help'], 'no_api_call', command, 'help', g.values, region), risks, c);
  if (sub!.startsWith('-')) throw parseError(`${command}: expected an operation, got option at ${at(subTok)}`, { index: subTok.index });

  if (entry.local || command === 's3') {
    return finish(customInvocation({ argv, g, command, sub: sub!, subTok, rest, ctx, c, st, region, version, model: undefined, risks }), risks, c);
  }
  const model = commandModel(command)!;
  const op = model.operation(sub!);
  if (!op) {
    if (Object.prototype.hasOwnProperty.call(model.custom, sub!) || (version === 'v2' && command === 'logs' && sub === 'tail')) {
      return finish(customInvocation({ argv, g, command, sub: sub!, subTok, rest, ctx, c, st, region, version, model, risks }), risks, c);
    }
    throw parseError(`${command}: unknown operation at ${at(subTok)}`, { index: subTok.index, token: sub });
  }
  const where = `${command} ${sub}:`;
  const args = parseArgTable(rest, op.args, where.slice(0, -1));
  const canonicalArgv = [...g.canonical, command, sub!, ...canonicalArgs(args)];
  if (args.help) return finish(emptyResult(argv, [...g.canonical, command, sub!, 'help'], 'no_api_call', command, sub, g.values, region), risks, c);
  if (args.options.has('generate-cli-skeleton')) {
    const r = emptyResult(argv, canonicalArgv, 'no_api_call', command, sub, g.values, region);
    r.notes.push('--generate-cli-skeleton prints a skeleton without calling AWS');
    return finish(r, risks, c);
  }
  if ([...args.options.values()].some((a) => a.abbreviated)) st.notes.push('abbreviated option expanded');
  if (args.repeated.length) st.notes.push(`repeated option(s) ${args.repeated.map((n) => `--${n}`).join(', ')}: the last one wins`);
  const params = buildParams(args, st, where.slice(0, -1));
  if (command === 'ec2' && /^(authorize|revoke)-security-group-(ingress|egress)$/.test(sub!)) secGroupShortcut(params, st.cliArgs, where.slice(0, -1));
  if (mergeCliInput(args, params, st, where.slice(0, -1))) risks.push('hidden_input');
  const permissions: Permission[] = operationPermissions({ service: model.service, prefix: model.prefix, api: op.api, ...(op.http ? { http: op.http } : {}) }, params, c, where.slice(0, -1));
  const res = emptyResult(argv, canonicalArgv, 'api', command, sub, g.values, region);
  res.service = model.service;
  res.operation = op.api;
  res.apiCalls = [op.api];
  res.params = params;
  res.permissions = permissions;
  res.files = st.files;
  res.notes = st.notes;
  if (Object.keys(st.cliArgs).length) res.cliArgs = st.cliArgs;
  return finish(res, risks, c);
}

export interface CustomInput {
  argv: string[];
  g: Globals;
  command: string;
  sub: string;
  subTok: Token;
  rest: Token[];
  ctx: InvocationContext;
  c: ArnContext;
  st: DecodeState;
  region: string;
  version: 'v1' | 'v2';
  model: CommandModel | undefined;
  risks: RiskSignal[];
}

export { emptyResult, canonicalArgs, buildParams, decodeValue, mergeCliInput, shell, permission, buildArgTable, customArgTable };
export type { Globals, LocalFile, AccessLevel };
