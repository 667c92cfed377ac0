import { Command } from 'commander';
import { installShim } from '../../runner/shim.js';
import type { CliContext } from '../context.js';
import { jsonOption } from '../options.js';

/** `guard-aws shim install [--dir DIR]`: put an `aws` on PATH that routes through guard-aws. */
export function command(ctx: CliContext): Command {
  const shim = new Command('shim').description('install an `aws` shim that routes through guard-aws');
  shim
    .command('install')
    .description('write an executable `aws` into DIR that runs guard-aws')
    .option('--dir <DIR>', 'directory for the shim (default: $XDG_DATA_HOME/guard-aws/bin or ~/.local/share/guard-aws/bin)')
    .addOption(jsonOption('print {path, pathLine} as JSON'))
    .action((opts: { dir?: string; json?: boolean }) => {
      const r = installShim({ dir: opts.dir, env: ctx.env, cwd: ctx.cwd });
      if (opts.json) {
        ctx.host.result(JSON.stringify({ path: r.path, pathLine: r.pathLine }, null, 2));
        return;
      }
      ctx.host.info(`wrote ${r.path}; add this line to your shell profile (or the agent's environment) so \`aws\` runs through guard-aws:`);
      ctx.host.result(r.pathLine);
    });
  return shim;
}
