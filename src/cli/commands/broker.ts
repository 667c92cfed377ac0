import { Command, Option } from 'commander';
import { runBroker } from '../../broker/run.js';
import { GuardError } from '../../errors.js';
import type { CliContext } from '../context.js';

/** `guard-aws broker --config FILE [--port N] [--host H]`: runs the broker until SIGTERM/SIGINT. */
export function command(ctx: CliContext): Command {
  return new Command('broker')
    .description('run the broker (see docs/broker-config.md)')
    .requiredOption('-c, --config <file>', 'broker config file (YAML)')
    .addOption(new Option('--port <port>', 'listen on this port instead of the config\'s').argParser(port))
    .option('--host <host>', 'listen on this address instead of the config\'s')
    .option('--rotate-audit-key', 'sign the audit log with a new key from now on (recorded in the chain; give it for one start only)')
    .action(async (opts: { config: string; port?: number; host?: string; rotateAuditKey?: boolean }) => {
      await runBroker(opts.config, ctx.host, {
        ...(opts.rotateAuditKey ? { rotateAuditKey: true } : {}),
        ...(opts.port !== undefined ? { port: opts.port } : {}),
        ...(opts.host !== undefined ? { host: opts.host } : {}),
      });
    });
}

function port(v: string): number {
  const n = Number(v);
  if (!/^[0-9]+$/.test(v) || n > 65535) throw new GuardError('usage', `--port: ${JSON.stringify(v)} is not a port number (0–65535)`);
  return n;
}
