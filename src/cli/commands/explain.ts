import { isAbsolute, relative } from 'node:path';
import { Command } from 'commander';
import { GuardError } from '../../errors.js';
import { modelIndex } from '../../invocation/model.js';
import { renderExplanation } from '../../policy/render.js';
import { DEFAULT_ACCOUNT, DEFAULT_REGION, explainInvocation } from '../../client/explain.js';
import { splitGuardOptions } from '../../client/guard-options.js';
import type { CliContext } from '../context.js';
import { jsonOption, profileOption, repeatable, targetOption } from '../options.js';

interface ExplainOptions {
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

export function command(ctx: CliContext): Command {
  return new Command('explain')
    .description('show how an aws invocation is parsed and decided (nothing is run)')
    .usage('[options] -- <aws arguments…>')
    .addOption(jsonOption('print one JSON object'))
    .addOption(repeatable('--policy <path>', 'policy file (repeatable; default: the shipped policies/default.yaml)'))
    .option('--account <id>', `target account (default ${DEFAULT_ACCOUNT})`)
    .option('--region <region>', `default region (default $AWS_REGION, $AWS_DEFAULT_REGION or ${DEFAULT_REGION})`)
    .option('--subject <subject>', 'caller subject (default $USER)')
    .option('--groups <groups>', 'caller groups, comma-separated (default none)')
    .option('--aws-cli <version>', 'read the invocation as this AWS CLI release would run it: 1, 2 or MAJOR.MINOR.PATCH (default 1)')
    .addOption(targetOption('"default"'))
    .addOption(profileOption())
    .argument('<aws-args...>', 'the aws invocation, after --')
    // explain's own options come first; the aws invocation starts at `--`, at the first argument, or at the
    // first option explain does not know (`guard-aws explain --debug sts get-caller-identity`).
    .passThroughOptions()
    .allowUnknownOption()
    .action(async (args: string[], o: ExplainOptions) => {
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
    });
}
