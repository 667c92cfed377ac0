import { Command } from 'commander';
import { DEFAULT_ACCOUNT, DEFAULT_REGION } from '../../client/explain.js';
import type { CliContext } from '../context.js';
import { jsonOption, profileOption, repeatable, targetOption } from '../options.js';
import { runExplain, type ExplainOptions } from './explain-run.js';

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
    // The common shape of this argv is read without commander (explain-run.ts); both end in runExplain.
    .action((args: string[], o: ExplainOptions) => runExplain(args, o, ctx));
}
