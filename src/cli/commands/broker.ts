import { Command } from 'commander';
import { runBroker } from '../../broker/run.js';
import type { CliContext } from '../context.js';
import { nodeSupportNotice } from '../node-support.js';
import { portOption } from '../options.js';

/** `guard-aws broker --config FILE [--port N] [--host H]`: runs the broker until SIGTERM/SIGINT. */
export function command(ctx: CliContext): Command {
  return new Command('broker')
    .description('run the broker (see docs/broker-config.md)')
    .requiredOption('-c, --config <file>', 'broker config file (YAML)')
    .addOption(portOption('--port <port>', 'listen on this port instead of the config\'s'))
    .option('--host <host>', 'listen on this address instead of the config\'s')
    .option('--rotate-audit-key', 'sign the audit log with a new key from now on (recorded in the chain; give it for one start only)')
    .action(async (opts: { config: string; port?: number; host?: string; rotateAuditKey?: boolean }) => {
      const notice = nodeSupportNotice(process.env);
      await runBroker(opts.config, ctx.host, {
        ...(opts.rotateAuditKey ? { rotateAuditKey: true } : {}),
        ...(opts.port !== undefined ? { port: opts.port } : {}),
        ...(opts.host !== undefined ? { host: opts.host } : {}),
        ...(notice ? { onListening: () => ctx.host.warn(notice) } : {}),
      });
    });
}

