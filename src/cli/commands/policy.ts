import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { EXIT } from '../../exit-codes.js';
import { checkPolicies } from '../../policy/check.js';
import { expandPaths } from '../../policy/paths.js';
import { formatDiagnostic } from '../../policy/source.js';
import { runPolicyTests } from '../../policy/test-runner.js';
import { visible } from '../../terminal-text.js';
import type { CliContext } from '../context.js';
import { jsonOption } from '../options.js';

/**
 * Exit status of `policy test` when a case fails: 1, as test runners (`opa test`, vitest, go test) do — a failed
 * expectation is neither a usage error nor a denial (77 means "AWS call denied"). Broken test or policy files
 * are configuration errors: 78.
 */
export const EXIT_TEST_FAILED = EXIT.TEST_FAILED;

export function command(ctx: CliContext): Command {
  const readFile = (p: string) => readFileSync(resolve(ctx.cwd, p));
  const policy = new Command('policy').description('check and test policy files');

  policy
    .command('check')
    .description('validate policy files: schema, unknown actions, rules that can never match, shadowed rules')
    .argument('[paths...]', 'policy files or directories (default: ./policies/*.yaml, or the shipped policies)')
    .addOption(jsonOption('print one JSON object: files, rules, errors, warnings, diagnostics'))
    .action((paths: string[], o: { json?: boolean }) => {
      const files = expandPaths(paths, ctx.cwd, 'policy');
      const r = checkPolicies(files, { readFile });
      // Warnings (shadowed rules) do not fail the check; errors do.
      ctx.exitCode = r.errors > 0 ? EXIT.CONFIG : EXIT.OK;
      if (o.json) {
        ctx.host.result(JSON.stringify({ ok: r.errors === 0, files, rules: r.rules, errors: r.errors, warnings: r.warnings, diagnostics: r.diagnostics }, null, 2));
        return;
      }
      for (const d of r.diagnostics) ctx.host.result(formatDiagnostic(d));
      ctx.host.info(`${files.length} file${files.length === 1 ? '' : 's'}, ${r.rules} rules: ${r.errors} error${r.errors === 1 ? '' : 's'}, ${r.warnings} warning${r.warnings === 1 ? '' : 's'}`);
    });

  policy
    .command('test')
    .description('run policy test files (*.test.yaml): argv, caller, target and the expected decision and rule')
    .argument('[paths...]', 'test files or directories (default: ./policies/**/*.test.yaml, or the shipped tests)')
    .option('-v, --verbose', 'also show what each passing case decided')
    .addOption(jsonOption('print one JSON object: passed, failed, cases (name, file, line, expected, got), diagnostics'))
    .action(async (paths: string[], o: { verbose?: boolean; json?: boolean }) => {
      // The parser (and its model tables) load only for `test`; `check` needs the IAM catalog alone.
      const { parseInvocation } = await import('../../invocation/parse.js');
      const files = expandPaths(paths, ctx.cwd, 'test');
      const r = runPolicyTests(files, parseInvocation, { readFile });
      ctx.exitCode = r.diagnostics.length ? EXIT.CONFIG : r.failed > 0 ? EXIT_TEST_FAILED : r.cases.length === 0 ? EXIT.USAGE : EXIT.OK;
      if (o.json) {
        ctx.host.result(JSON.stringify({ ok: ctx.exitCode === EXIT.OK, passed: r.passed, failed: r.failed, cases: r.cases, diagnostics: r.diagnostics }, null, 2));
        return;
      }
      for (const d of r.diagnostics) ctx.host.error(formatDiagnostic(d));
      let last = '';
      // Case names default to the argv, and `got` quotes parser messages: control characters shown, not obeyed.
      for (const c of r.cases) {
        if (c.file !== last) ctx.host.result(visible((last = c.file)));
        if (c.passed) ctx.host.result(`  PASS  ${visible(c.name)}${o.verbose ? `  (${visible(c.got)})` : ''}`);
        else ctx.host.result(`  FAIL  ${visible(c.name)}  (${visible(c.file)}:${c.line})\n          expected ${visible(c.expected)}\n          got      ${visible(c.got)}`);
      }
      ctx.host.result(`${r.passed} passed, ${r.failed} failed${r.diagnostics.length ? `, ${r.diagnostics.length} file error${r.diagnostics.length === 1 ? '' : 's'}` : ''}`);
    });
  return policy;
}
