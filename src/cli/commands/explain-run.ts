import { isAbsolute, relative } from 'node:path';
import { GuardError } from '../../errors.js';
import { modelIndex } from '../../invocation/model.js';
import { renderExplanation } from '../../policy/render.js';
import { DEFAULT_ACCOUNT, DEFAULT_REGION, explainInvocation } from '../../client/explain.js';
import { splitGuardOptions } from '../../client/guard-options.js';
import type { CliContext } from '../context.js';

/**
 * `guard-aws explain` without commander: the command's action, and a reader for the common shape of its argv
 * (known options, then `--` and the aws invocation). Loading commander is about a sixth of `explain`'s start-up
 * (issue 14: `npm run bench -- startup`), so main.ts tries this reader first and hands anything else — help, an
 * unknown or malformed option, no `--` — to the commander definition in explain.ts, which reads it as before.
 */
export interface ExplainOptions {
  json?: boolean;
  policy: string[];
  account?: string;
  region?: string;
  subject?: string;
  groups?: string;
  target?: string;
  profile?: string;
  awsCli?: string;
}

/** explain's options that take a value, by flag, as commander names their properties. */
const VALUED: Record<string, Exclude<keyof ExplainOptions, 'json'>> = {
  '--policy': 'policy',
  '--account': 'account',
  '--region': 'region',
  '--subject': 'subject',
  '--groups': 'groups',
  '--aws-cli': 'awsCli',
  '--target': 'target',
  '--profile': 'profile',
};

/**
 * Reads `[options] -- <aws arguments…>` exactly as commander reads it for explain.ts's definition, or returns
 * undefined for any other shape (commander then reads it and says what is wrong). Accepted: `--json`, and the
 * valued options as `--name value` (value not starting with `-`) or `--name=value`; `--policy` accumulates, any
 * other repeated option keeps its last value; at least one argument after `--`.
 */
export function readExplainArgv(argv: readonly string[]): { args: string[]; options: ExplainOptions } | undefined {
  const options: ExplainOptions = { policy: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      const args = argv.slice(i + 1);
      return args.length ? { args, options } : undefined;
    }
    if (a === '--json') {
      options.json = true;
      continue;
    }
    const eq = a.indexOf('=');
    const flag = eq > 0 ? a.slice(0, eq) : a;
    const key = Object.hasOwn(VALUED, flag) ? VALUED[flag] : undefined;
    if (!key) return undefined;
    let value: string;
    if (eq > 0) value = a.slice(eq + 1);
    else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('-')) return undefined;
      value = next;
      i++;
    }
    if (key === 'policy') options.policy.push(value);
    else options[key] = value;
  }
  return undefined;
}

/** The fast path: true when the argv had the common shape and the explanation was printed. */
export async function explainFast(argv: readonly string[], ctx: CliContext): Promise<boolean> {
  const read = readExplainArgv(argv);
  if (!read) return false;
  await runExplain(read.args, read.options, ctx);
  return true;
}

export async function runExplain(args: string[], o: ExplainOptions, ctx: CliContext): Promise<void> {
  const defaults: string[] = [];
  const account = o.account ?? (defaults.push('account'), DEFAULT_ACCOUNT);
  if (!/^\d{12}$/.test(account)) throw new GuardError('usage', `--account must be a 12-digit account id, got "${account}"`);
  const region = o.region ?? ctx.env.AWS_REGION ?? ctx.env.AWS_DEFAULT_REGION ?? (defaults.push('region'), DEFAULT_REGION);
  const subject = o.subject ?? ctx.env.USER ?? (defaults.push('subject'), 'local-user');
  if (o.subject === undefined && ctx.env.USER) defaults.push('subject');
  const groups = (o.groups ?? '').split(',').map((g) => g.trim()).filter(Boolean);
  // As on the run path: an exact `--profile NAME` in the aws arguments picks the broker target and is never
  // passed to aws (src/client/guard-options.ts); abbreviations stay in the argv and are judged as overrides.
  // `--target`, explain's own `--profile` and an aws-style `--profile` all name the same thing; they must agree.
  const split = splitGuardOptions(['--', ...args]);
  const named = [
    ['--target', o.target],
    ['--profile', o.profile],
    ['--profile', split.options.target],
  ].filter((n): n is [string, string] => n[1] !== undefined);
  const differing = named.find((n) => n[1] !== named[0]![1]);
  if (differing) throw new GuardError('usage', `${named[0]![0]} ${named[0]![1]} and ${differing[0]} ${differing[1]} name different targets`);
  args = split.awsArgv;
  const targetName = named[0]?.[1] ?? (defaults.push('target'), 'default');
  // The table of that release (docs/aws-cli-parsing.md §6.3); a bare major means the shipped table's release.
  const wanted = o.awsCli ?? '1';
  if (!/^[12]$|^\d+\.\d+\.\d+$/.test(wanted)) throw new GuardError('usage', `--aws-cli must be 1, 2 or MAJOR.MINOR.PATCH, got "${wanted}"`);
  const e = await explainInvocation({
    argv: args,
    cliVersion: /^[12]$/.test(wanted) ? modelIndex(wanted === '1' ? 'v1' : 'v2').cliVersion : wanted,
    caller: { subject, groups },
    target: { name: targetName, account, region },
    policies: o.policy,
    cwd: ctx.cwd,
    env: ctx.env,
    defaults,
  });
  // Show where the rule lives relative to the working directory when it is below it (shorter, clickable).
  if (e.source && isAbsolute(e.source)) {
    const rel = relative(ctx.cwd, e.source);
    if (!rel.startsWith('..')) e.source = rel;
  }
  ctx.host.result(o.json ? JSON.stringify(e) : renderExplanation(e, ctx.host.color));
  ctx.exitCode = 0;
}
